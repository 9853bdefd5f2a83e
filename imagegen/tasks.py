"""Celery tasks: they take a job id and hand it to the services; the job row is the guard."""
from celery import shared_task

from . import services
from .conf import settings


@shared_task(
    name="imagegen.run_job",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    soft_time_limit=settings.TASK_SOFT_TIME_LIMIT,
    time_limit=settings.TASK_TIME_LIMIT,
)
def run_job(job_id: int) -> None:
    services.execute(job_id)


@shared_task(name="imagegen.reconcile_jobs", ignore_result=True)
def reconcile_jobs() -> dict:
    """Periodic (Celery beat): send again the jobs a broker outage or a dead worker left behind."""
    return services.reconcile()
