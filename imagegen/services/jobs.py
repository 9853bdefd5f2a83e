"""Creating, enqueueing, running and cancelling jobs.

The job row is the source of truth and the idempotency guard: a task moves it forward only with
conditional updates (``filter(state=...).update(...)``), so a duplicate delivery finds nothing to claim.
"""
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Model, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import settings
from ..models import Job
from .leases import Heartbeat, lease_until, worker_id

logger = logging.getLogger(__name__)

SEED_MAX = 2**31 - 1

ProgressCallback = Callable[[int, str], None]


class JobError(Exception):
    """A failure the shop owner can act on; its text is stored on the job as it is."""


class TooManyActiveJobs(Exception):
    """The user already has IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER jobs queued or running."""


class JobCancelled(Exception):
    """The job was cancelled while it ran; the runner stops and leaves the row as it is."""


def new_seed() -> int:
    return secrets.randbelow(SEED_MAX)


def validate_seed(seed: Any) -> int:
    if seed is None:
        return new_seed()
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValidationError({"seed": f"Seed must be a whole number from 0 to {SEED_MAX}."})
    return seed


def validate_kind(kind: str | None) -> str:
    kind = kind or settings.DEFAULT_KIND
    if kind not in settings.KINDS:
        raise ValidationError({"kind": f"Unknown kind {kind!r}; choose one of: {', '.join(settings.KINDS)}."})
    return kind


def create_job(kind: str, *, product: Model | None = None, parameters: dict, user=None, send: bool = True) -> Job:
    """Store a queued job and, unless ``send`` is False (the caller runs it itself with ``execute``),
    send it to the workers once the surrounding transaction commits."""
    with transaction.atomic():
        _check_active_jobs(user)
        job = Job.objects.create(
            kind=kind,
            product=product,
            parameters=parameters,
            requested_by=user if user is not None and user.is_authenticated else None,
        )
        if send:
            enqueue(job)
    return job


def _check_active_jobs(user) -> None:
    """Refuse a new job to a user at the cap. Locking the user's row serialises one user's concurrent
    requests, so two of them cannot both see room for one more job."""
    cap = settings.MAX_ACTIVE_JOBS_PER_USER
    if cap is None or user is None or not user.is_authenticated:
        return
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
    # A bulk operation's jobs are capped as one operation (IMAGEGEN_MAX_ACTIVE_BULK_OPERATIONS_PER_USER).
    active = Job.objects.filter(
        requested_by=user, state__in=[Job.State.QUEUED, Job.State.RUNNING], bulk__isnull=True
    ).count()
    if active >= cap:
        raise TooManyActiveJobs(
            f"You have {active} jobs queued or running, the most one user may have at once "
            f"(IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER = {cap}). Wait for some to finish, or cancel some."
        )


def enqueue(job: Job) -> None:
    """Send the job's id to its queue after commit, so a worker never looks for a row not yet visible."""
    job_id, kind = job.pk, job.kind
    transaction.on_commit(lambda: send(job_id, kind))


def queue_for(kind: str) -> str:
    """The Celery queue of a job kind: training has its own (long jobs, one per GPU), the rest is inference."""
    return settings.TRAIN_QUEUE if kind == Job.Kind.TRAIN else settings.QUEUE


def send(job_id: int, kind: str | None = None) -> bool:
    """Hand a job id to the broker now; False (logged) when the broker cannot be reached.

    The job is stored either way: the reconciler sends queued jobs nobody claimed once the broker is back,
    so a broker outage delays work instead of failing the request that asked for it."""
    from ..tasks import run_job, run_training_job

    if kind is None:
        kind = Job.objects.values_list("kind", flat=True).get(pk=job_id)
    task, limits = run_job, {}
    if kind == Job.Kind.TRAIN:
        # Training takes hours: its own task, and its limits in the message itself, read now rather than
        # when the worker imported the task module.
        task = run_training_job
        limits = {"soft_time_limit": settings.TRAIN_TASK_SOFT_TIME_LIMIT, "time_limit": settings.TRAIN_TASK_TIME_LIMIT}
    try:
        # No publish retries: a web request must not hang on a dead broker; the reconciler retries.
        task.apply_async(args=[job_id], queue=queue_for(kind), retry=False, **limits)
    except Exception as exc:  # kombu raises OperationalError, redis-py its own ConnectionError
        logger.warning("job %s stays queued, the broker is unreachable: %s", job_id, exc)
        return False
    return True


def cancel(job: Job) -> bool:
    """Cancel a queued or running job; a running one stops at its next progress report."""
    changed = Job.objects.filter(pk=job.pk, state__in=[Job.State.QUEUED, Job.State.RUNNING]).update(
        state=Job.State.CANCELLED, finished_at=timezone.now(), message="Cancelled"
    )
    job.refresh_from_db()
    return bool(changed)


class ProgressReporter:
    """Writes a running job's progress into its row and notices cancellation.

    Calls are cheap to make often: the row is written when the percentage changes or a few seconds
    have passed.
    """

    def __init__(self, job_id: int, callback: ProgressCallback | None = None, min_interval: float = 2.0, *, attempt: int):
        self.job_id = job_id
        self.attempt = attempt
        self.callback = callback
        self.min_interval = min_interval
        self._last = (-1, 0.0)

    def __call__(self, percent: float, message: str = "") -> None:
        percent = max(0, min(100, int(percent)))
        if self.callback:
            self.callback(percent, message)
        now = time.monotonic()
        if percent == self._last[0] and now - self._last[1] < self.min_interval:
            return
        self._last = (percent, now)
        updated = _holding(self.job_id, self.attempt).update(
            progress=percent, message=message[:255], updated_at=timezone.now()
        )
        if not updated:
            raise JobCancelled(self.job_id)


def _runners() -> dict[str, Callable[[Job, ProgressReporter], None]]:
    from . import editing, generation, training

    return {Job.Kind.GENERATE: generation.run, Job.Kind.TRAIN: training.run, Job.Kind.EDIT: editing.run}


def _holding(job_id: int, attempt: int):
    """The job's row while it is running under ``attempt`` (a newer attempt fences this one off)."""
    return Job.objects.filter(pk=job_id, state=Job.State.RUNNING, attempts=attempt)


def _finish(job_id: int, state: str, attempt: int, **fields: Any) -> None:
    _holding(job_id, attempt).update(
        state=state, finished_at=timezone.now(), updated_at=timezone.now(), lease_expires_at=None, **fields
    )


@contextmanager
def storing_results(job_id: int, attempt: int, message: str = "Done") -> Iterator[dict[str, Any]]:
    """Around the writes of a job's results, inside the transaction that stores them: locks the job's row
    until commit and raises ``JobCancelled`` (rolling the results back) unless ``attempt`` still holds the
    job running; after the writes, marks the job done in the same transaction, with the fields the caller
    put in the yielded dict (``model_version``, ``message``). A stalled attempt that a newer one took over,
    or a job cancelled meanwhile, stores nothing; a cancel arriving after the commit finds the job done."""
    if not list(_holding(job_id, attempt).select_for_update().values_list("pk", flat=True)):
        raise JobCancelled(job_id)
    done: dict[str, Any] = {"message": message}
    yield done
    _finish(job_id, Job.State.SUCCEEDED, attempt, progress=100, **done)


def time_limit_text(kind: str) -> str:
    """Why a job stopped at its task's soft time limit (training has its own)."""
    limit = settings.TRAIN_TASK_SOFT_TIME_LIMIT if kind == Job.Kind.TRAIN else settings.TASK_SOFT_TIME_LIMIT
    return _("Stopped: the job ran past the time limit of %(seconds)s seconds.") % {"seconds": limit}


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


def execute(job_id: int, *, on_progress: ProgressCallback | None = None, gather: bool = False) -> Job | None:
    """Claim a job and run it to a final state. Returns None when there was nothing to claim
    (gone, running under a live lease elsewhere, finished or cancelled).

    With ``gather`` (the workers' tasks) a generate job also takes queued generate jobs of its kind into
    its forward passes (services.batching), each run and finished on its own."""
    from .memory import failure_text, is_out_of_memory, release_memory  # it builds on this module's JobError

    attempt = claim(job_id)
    if attempt is None:
        logger.info("job %s: nothing to claim, skipping", job_id)
        return None
    job = Job.objects.get(pk=job_id)
    if gather and job.kind == Job.Kind.GENERATE and settings.INFERENCE_MAX_BATCH > 1:
        from .batching import execute_gathering

        return execute_gathering(job_id, attempt)
    out_of_memory = False
    try:
        with Heartbeat({job_id: attempt}):
            _runners()[job.kind](job, ProgressReporter(job_id, on_progress, attempt=attempt))
    except JobCancelled:
        logger.info("job %s: cancelled while running", job_id)
    except JobError as exc:
        _finish(job_id, Job.State.FAILED, attempt, error=str(exc), message="Failed")
    except SoftTimeLimitExceeded:
        _finish(
            job_id,
            Job.State.FAILED,
            attempt,
            error=time_limit_text(job.kind),
            message="Failed",
        )
    except Exception as exc:  # the worker must survive anything a job does; the reason goes on the row
        logger.exception("job %s failed", job_id)
        out_of_memory = is_out_of_memory(exc)
        _finish(job_id, Job.State.FAILED, attempt, error=failure_text(exc), message="Failed")
    else:
        _finish(job_id, Job.State.SUCCEEDED, attempt, progress=100, message="Done")
    if out_of_memory:
        # After the except block, so the failed job's traceback no longer holds its tensors. Only then: a
        # full collection costs about 0.1 s, more than a small generate job.
        release_memory()
    job.refresh_from_db()
    return job


def execute_many(job_ids: list[int], *, gather: bool = False) -> list[Job]:
    """Run several jobs in this process (one Celery task of a batch); returns the listed ones that were
    claimed, in the list's order.

    Each job is claimed, fenced and finished on its own, exactly as ``execute`` does; the generate jobs
    share forward passes of up to IMAGEGEN_INFERENCE_MAX_BATCH images (services.batching), and with
    ``gather`` a pass with room also takes queued generate jobs from outside the list."""
    from .batching import execute_generate

    kinds = dict(Job.objects.filter(pk__in=job_ids).values_list("pk", "kind"))
    generate = [job_id for job_id in job_ids if kinds.get(job_id) == Job.Kind.GENERATE]
    done = {job.pk: job for job in execute_generate(generate, gather_more=gather)}
    for job_id in job_ids:
        if job_id not in kinds or kinds[job_id] == Job.Kind.GENERATE:
            continue
        job = execute(job_id)
        if job is not None:
            done[job_id] = job
    return [done[job_id] for job_id in dict.fromkeys(job_ids) if job_id in done]
