"""Running claimed jobs through their runner to a final state, whatever the runner does.

The worker must survive anything a job does: every exception ends on the job's row (its text, or the
runner's description of it), and a job still held when its runner returns is marked done.
"""
import logging

from celery.exceptions import SoftTimeLimitExceeded

from ..models import Job
from .errors import JobCancelled, JobError
from .leases import Heartbeat
from .progress import ProgressCallback
from .runners import Claimed, Runner, runner_for
from .states import claim, fail, succeed

logger = logging.getLogger(__name__)


def run_claimed(runner: Runner, batch: list[Claimed], *, gather: bool = False) -> None:
    """Run a batch of claimed jobs of ``runner``'s kind to their final states, their leases renewed; with
    ``gather``, the runner first adds the claimable jobs it would share the work with."""
    failure: BaseException | None = None
    with Heartbeat({c.job_id: c.attempt for c in batch}) as heartbeat:
        try:
            if gather:
                gathered = runner.gather(batch[0])
                heartbeat.hold({c.job_id: c.attempt for c in gathered})
                batch = [*batch, *gathered]
            runner.run(batch)
        except JobCancelled:
            logger.info("jobs %s: cancelled while running", [c.job_id for c in batch])
        except JobError as exc:
            _fail_held(batch, str(exc))
        except SoftTimeLimitExceeded:
            _fail_held(batch, runner.time_limit_text())
        except Exception as exc:  # the reason goes on the rows; the worker goes on
            logger.exception("jobs %s failed", [c.job_id for c in batch])
            failure = exc
            _fail_held(batch, runner.failure_text(exc))
        else:
            for claimed in batch:
                succeed(claimed.job_id, claimed.attempt)
    if failure is not None:
        # After the except block, so the failed attempt's traceback no longer holds what it allocated.
        runner.after_failure(failure)


def _fail_held(batch: list[Claimed], error: str) -> None:
    for claimed in batch:
        fail(claimed.job_id, claimed.attempt, error)


def execute(job_id: int, *, on_progress: ProgressCallback | None = None, gather: bool = False) -> Job | None:
    """Claim a job and run it to a final state. Returns None when there was nothing to claim
    (gone, running under a live lease elsewhere, finished or cancelled) or it was deleted while it ran.

    With ``gather`` (the workers' tasks) the runner may take further claimable jobs into the same batch
    (generate jobs share forward passes)."""
    kind = Job.objects.filter(pk=job_id).values_list("kind", flat=True).first()
    # Before the claim: a kind without a runner (a worker running older code) leaves the job queued.
    runner = runner_for(kind) if kind is not None else None
    attempt = claim(job_id) if runner is not None else None
    if attempt is None:
        logger.info("job %s: nothing to claim, skipping", job_id)
        return None
    run_claimed(runner, [Claimed(job_id, attempt, on_progress)], gather=gather)
    return Job.objects.filter(pk=job_id).first()  # None when it was deleted meanwhile


def execute_many(job_ids: list[int], *, gather: bool = False) -> list[Job]:
    """Run several jobs in this process (one Celery task of a bulk operation); returns the listed ones that
    were claimed, in the list's order.

    Each job is claimed, fenced and finished on its own; each kind's runner packs its jobs into batches."""
    kinds = dict(Job.objects.filter(pk__in=job_ids).values_list("pk", "kind"))
    ran: list[int] = []
    for kind in dict.fromkeys(kinds[job_id] for job_id in job_ids if job_id in kinds):
        runner = runner_for(kind)
        own = [job_id for job_id in job_ids if kinds.get(job_id) == kind]
        for batch in runner.batches(own, gather=gather):
            run_claimed(runner, batch)
            ran += [c.job_id for c in batch]
    done = {job.pk: job for job in Job.objects.filter(pk__in=ran)}
    return [done[job_id] for job_id in dict.fromkeys(job_ids) if job_id in done]
