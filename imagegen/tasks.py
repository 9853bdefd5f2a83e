"""Celery tasks: they take a job id and hand it to the services; the job row is the guard."""
from celery import shared_task

from . import services, worker_process  # noqa: F401  (worker_process connects the pool set-up signals)
from .jobcore.groups import settle_running
from .conf import settings

# Tasks that run jobs: acknowledged only when done (a killed worker's message goes back to the queue), no
# result stored (the job row is the result), and the configured time limits.
JOB_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "soft_time_limit": settings.TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.TASK_TIME_LIMIT,
}


@shared_task(name="imagegen.run_job", **JOB_TASK)
def run_job(job_id: int) -> None:
    # gather: a generate job takes queued ones of its kind into its forward passes (services.batching).
    services.execute(job_id, gather=True)
    settle_running()


# Training jobs: hours, not minutes (IMAGEGEN_TRAIN_TASK_*). jobcore.creating.send (with TrainRunner.time_limits) also puts these limits in
# each message, so a changed setting applies without restarting the workers.
TRAIN_TASK = {
    **JOB_TASK,
    "soft_time_limit": settings.TRAIN_TASK_SOFT_TIME_LIMIT,
    "time_limit": settings.TRAIN_TASK_TIME_LIMIT,
}


@shared_task(name="imagegen.run_training_job", **TRAIN_TASK)
def run_training_job(job_id: int) -> None:
    services.execute(job_id)


@shared_task(name="imagegen.run_jobs", **JOB_TASK)
def run_jobs(job_ids: list[int]) -> None:
    """A batch of jobs in one task (bulk operations): one message, not one per product."""
    services.execute_many(job_ids, gather=True)
    settle_running()


@shared_task(name="imagegen.expand_bulk", **JOB_TASK)
def expand_bulk(operation_id: int) -> None:
    """Create a bulk operation's jobs in chunks and send them in batches (light queue)."""
    services.bulk.expand(operation_id)


@shared_task(name="imagegen.reconcile_jobs", ignore_result=True)
def reconcile_jobs() -> dict:
    """Periodic (Celery beat): send again the jobs a broker outage or a dead worker left behind."""
    return services.reconcile()
