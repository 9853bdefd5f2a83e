"""Celery signal receivers that set up imagegen's worker processes (imported with ``imagegen.tasks``).

The parent records which queues it consumes before its pool forks; each pool process then picks its GPU and
warms its models (``services.worker_setup``)."""
from celery.signals import celeryd_after_setup, worker_process_init

_queues: set[str] = set()


@celeryd_after_setup.connect
def remember_queues(sender=None, instance=None, **kwargs) -> None:
    if instance is not None:
        _queues.update(instance.app.amqp.queues.consume_from or {})


@worker_process_init.connect
def prepare_pool_process(**kwargs) -> None:
    from billiard.process import current_process

    from .services.worker_setup import prepare_process

    prepare_process(getattr(current_process(), "index", 0) or 0, _queues)
