"""A job's row moves forward only by conditional updates: claimed when claimable, fenced by its attempt
number while it runs, finished once. A duplicate delivery or a stalled attempt finds nothing to update."""
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.models import F, Q
from django.utils import timezone

from ..conf import settings
from ..models import Job
from .errors import JobCancelled
from .leases import lease_until, worker_id

logger = logging.getLogger(__name__)


def holding(job_id: int, attempt: int):
    """The job's row while it is running under ``attempt`` (a newer attempt fences this one off)."""
    return Job.objects.filter(pk=job_id, state=Job.State.RUNNING, attempts=attempt)


def finish(job_id: int, state: str, attempt: int, **fields: Any) -> int:
    """Give the job its final ``state`` if ``attempt`` still holds it; returns 1 when it did."""
    return holding(job_id, attempt).update(
        state=state, finished_at=timezone.now(), updated_at=timezone.now(), lease_expires_at=None, **fields
    )


def fail(job_id: int, attempt: int, error: str) -> int:
    return finish(job_id, Job.State.FAILED, attempt, error=error, message="Failed")


def succeed(job_id: int, attempt: int, message: str = "Done", **fields: Any) -> int:
    return finish(job_id, Job.State.SUCCEEDED, attempt, progress=100, message=message, **fields)


@contextmanager
def storing_results(job_id: int, attempt: int, message: str = "Done") -> Iterator[dict[str, Any]]:
    """Around the writes of a job's results, inside the transaction that stores them: locks the job's row
    until commit and raises ``JobCancelled`` (rolling the results back) unless ``attempt`` still holds the
    job running; after the writes, marks the job done in the same transaction, with the fields the caller
    put in the yielded dict (``model_version``, ``message``). A stalled attempt that a newer one took over,
    or a job cancelled meanwhile, stores nothing; a cancel arriving after the commit finds the job done."""
    if not list(holding(job_id, attempt).select_for_update().values_list("pk", flat=True)):
        raise JobCancelled(job_id)
    done: dict[str, Any] = {"message": message}
    yield done
    succeed(job_id, attempt, **done)


def claimable() -> Q:
    """Jobs a worker may claim: queued ones, and running ones whose worker's lease ran out."""
    return Q(state=Job.State.QUEUED) | Q(state=Job.State.RUNNING, lease_expires_at__lt=timezone.now())


def _give_up_message(attempts: int) -> str:
    return (
        f"Gave up after {attempts} attempts: the worker running this job stopped each time (killed, out of "
        "memory or restarted). Check the workers' logs and memory, then start the job again."
    )


def claim(job_id: int) -> int | None:
    """Take the job for this worker; returns the attempt number, or None when there is nothing to claim.

    A job whose attempts are used up is failed with the reason instead of being run again."""
    exhausted = Job.objects.filter(claimable(), pk=job_id, attempts__gte=settings.JOB_MAX_ATTEMPTS)
    if exhausted.update(
        state=Job.State.FAILED, finished_at=timezone.now(), lease_expires_at=None, message="Failed",
        error=_give_up_message(settings.JOB_MAX_ATTEMPTS),
    ):
        logger.warning("job %s: attempts used up, failed", job_id)
        return None
    claimed = Job.objects.filter(claimable(), pk=job_id).update(
        state=Job.State.RUNNING,
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        lease_expires_at=lease_until(),
        worker=worker_id()[:255],
        progress=0,
        message="Started",
        error="",
    )
    if not claimed:
        return None
    return Job.objects.values_list("attempts", flat=True).get(pk=job_id)


def cancel(job: Job) -> bool:
    """Cancel a queued or running job; a running one stops at its next progress report."""
    changed = Job.objects.filter(pk=job.pk, state__in=[Job.State.QUEUED, Job.State.RUNNING]).update(
        state=Job.State.CANCELLED, finished_at=timezone.now(), message="Cancelled"
    )
    job.refresh_from_db()
    return bool(changed)
