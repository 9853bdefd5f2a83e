"""Bulk operations seen from the job core: sending their expansion and their jobs in batches, and giving an
operation its final state once its jobs are all over. Which jobs an operation makes is the work's business
(``services.bulk``)."""
import logging
from collections.abc import Iterable

from django.utils import timezone
from django.utils.module_loading import import_string

from ..conf import settings
from ..models import BulkOperation, Job

logger = logging.getLogger(__name__)

ACTIVE_JOB_STATES = (Job.State.QUEUED, Job.State.RUNNING)
# The tasks, by dotted path: the tasks module imports the work, which the core must not.
EXPAND_TASK = "imagegen.tasks.expand_bulk"
BATCH_TASK = "imagegen.tasks.run_jobs"


def send_expansion(operation_id: int) -> bool:
    """Send the operation's expansion task now; False (logged) when the broker cannot be reached, in which
    case the reconciler sends it later."""
    expand_bulk = import_string(EXPAND_TASK)
    try:
        expand_bulk.apply_async(args=[operation_id], queue=settings.LIGHT_QUEUE, retry=False)
    except Exception as exc:  # kombu raises OperationalError, redis-py its own ConnectionError
        logger.warning("bulk operation %s waits, the broker is unreachable: %s", operation_id, exc)
        return False
    return True


def send_batches(job_ids: list[int]) -> int:
    """Send ``job_ids`` to the inference queue as run_jobs messages of IMAGEGEN_BULK_BATCH_SIZE jobs, over
    one broker connection; returns how many messages went out. Jobs whose message could not be sent stay
    queued for the reconciler."""
    run_jobs = import_string(BATCH_TASK)
    size = settings.BULK_BATCH_SIZE
    sent = 0
    try:
        with run_jobs.app.producer_or_acquire() as producer:
            for start in range(0, len(job_ids), size):
                run_jobs.apply_async(
                    args=[job_ids[start : start + size]], queue=settings.QUEUE, retry=False, producer=producer
                )
                sent += 1
    except Exception as exc:
        logger.warning("%d bulk jobs stay queued, the broker is unreachable: %s", len(job_ids) - sent * size, exc)
    return sent


def settle(operation_ids: Iterable[int]) -> int:
    """Give each running operation whose jobs have all finished its final state; returns how many.

    Called after every job task (the last one to finish sees no job left; ``settle_running``), at the end of
    an expansion and by the reconciler; per operation it is one indexed EXISTS while jobs remain."""
    settled = 0
    for operation_id in BulkOperation.objects.filter(pk__in=list(operation_ids), state=BulkOperation.State.RUNNING).values_list("pk", flat=True):
        jobs = Job.objects.filter(bulk_id=operation_id)
        if jobs.filter(state__in=ACTIVE_JOB_STATES).exists():
            continue
        any_succeeded = jobs.filter(state=Job.State.SUCCEEDED).exists()
        error = "" if any_succeeded else (
            "No job of this operation succeeded; see the most common failure reasons in its summary."
            if jobs.exists() else "None of the selected products exists any more."
        )
        settled += BulkOperation.objects.filter(pk=operation_id, state=BulkOperation.State.RUNNING).update(
            state=BulkOperation.State.SUCCEEDED if any_succeeded else BulkOperation.State.FAILED,
            error=error, finished_at=timezone.now(), updated_at=timezone.now(),
        )
    return settled


def settle_running() -> int:
    """``settle`` every running operation; called after each job task. A task's batch may have run jobs of
    other operations too (generate jobs gather queued ones into their forward passes), so it cannot tell
    from its own ids which operation its work finished. Few operations run at once (a cap per user), and
    each costs one indexed EXISTS while jobs remain."""
    running = list(BulkOperation.objects.filter(state=BulkOperation.State.RUNNING).values_list("pk", flat=True))
    return settle(running) if running else 0
