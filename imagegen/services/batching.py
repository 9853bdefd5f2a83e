"""The runner of generate jobs, which batches across jobs on the inference workers: generate jobs served by the same model version share one
forward pass, so a hundred single-image jobs do not cost a hundred passes.

A worker that runs a generate job also claims other claimable generate jobs of the same kind, oldest
first, until the pass holds IMAGEGEN_INFERENCE_MAX_BATCH images or IMAGEGEN_INFERENCE_BATCH_WAIT seconds
have gone by. Each job is claimed with its own conditional update and attempt number, exactly as
``jobcore.states.claim`` does for one: a job another worker took first is skipped, and the Celery message of a job
taken here later finds nothing to claim. One heartbeat thread keeps every lease of the set alive. The
jobs are grouped by the model version that serves their product's category, and each group is made in
passes of at most MAX_BATCH images, each image with its own product's conditions and its own seed; then
every job gets exactly its own images and is finished on its own: a job whose product has no category or
no model fails alone with its reason, and a job cancelled meanwhile is left cancelled. A single generate
job is a batch of one.
"""
import logging
import time
from collections.abc import Iterator, Sequence

from celery.exceptions import SoftTimeLimitExceeded

from ..conf import settings
from ..jobcore.errors import JobCancelled, JobError
from ..jobcore.runners import Claimed, register
from ..jobcore.states import claim, claimable, fail, succeed
from ..models import Job
from . import near_copies
from .generation import attach, generate_passes, plan
from .memory import failure_text, release_memory, shrinking_batches
from .model_registry import load_sampler
from .model_runner import ModelRunner

logger = logging.getLogger(__name__)

# Seconds between looks at the job table while a pass waits for more jobs: one indexed query each.
POLL_INTERVAL = 0.01


def _image_counts(job_ids: Sequence[int]) -> dict[int, int]:
    rows = Job.objects.filter(pk__in=list(job_ids), kind=Job.Kind.GENERATE).values_list("pk", "parameters__count")
    return {pk: int(count or 1) for pk, count in rows}


def gather_queued(kind: str, room: int, *, exclude: Sequence[int] = (), wait: float | None = None) -> list[Claimed]:
    """Claim further generate jobs of generator ``kind``, oldest first, holding at most ``room`` images in
    all, looking again for ``wait`` seconds (IMAGEGEN_INFERENCE_BATCH_WAIT) while there is room."""
    wait = settings.INFERENCE_BATCH_WAIT if wait is None else wait
    deadline = time.monotonic() + wait
    held: list[Claimed] = []
    skip = set(exclude)
    while room > 0:
        candidates = (
            Job.objects.filter(claimable(), kind=Job.Kind.GENERATE, parameters__kind=kind)
            .exclude(pk__in=skip)
            .order_by("created_at", "id")
            .values_list("pk", "parameters__count")[:room]
        )
        for job_id, count in candidates:
            count = int(count or 1)
            if count > room:
                continue
            skip.add(job_id)
            attempt = claim(job_id)
            if attempt is not None:  # else another worker took it first
                held.append(Claimed(job_id, attempt))
                room -= count
        if room <= 0 or time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    return held


@register
class GenerateRunner(ModelRunner):
    kind = Job.Kind.GENERATE

    def gather(self, first: Claimed) -> list[Claimed]:
        """Queued generate jobs of the first one's generator kind, into the same passes."""
        room = settings.INFERENCE_MAX_BATCH - int(first.job.parameters.get("count", 1))
        if settings.INFERENCE_MAX_BATCH <= 1 or room <= 0:
            return []
        return gather_queued(first.job.parameters["kind"], room, exclude=[first.job_id])

    def batches(self, job_ids: list[int], *, gather: bool = False) -> Iterator[list[Claimed]]:
        """The listed jobs in their order, in batches of at most IMAGEGEN_INFERENCE_MAX_BATCH images; with
        ``gather`` a batch that has room also takes queued generate jobs of the same kind."""
        counts = _image_counts(job_ids)
        pending = [job_id for job_id in job_ids if job_id in counts]
        limit = settings.INFERENCE_MAX_BATCH
        while pending:
            held, images = [], 0
            while pending and (not held or images + counts[pending[0]] <= limit):
                job_id = pending.pop(0)
                attempt = claim(job_id)
                if attempt is not None:
                    held.append(Claimed(job_id, attempt))
                    images += counts[job_id]
            if not held:
                continue
            if gather and images < limit:
                kind = held[0].job.parameters["kind"]
                held += gather_queued(kind, limit - images, exclude=[h.job_id for h in held] + pending)
            yield held

    def run(self, batch: list[Claimed]) -> None:
        """Plan each job (one that cannot be planned fails alone), then one version's jobs at a time."""
        by_version: dict[int, list] = {}
        for claimed in batch:
            try:
                job_plan = plan(claimed.job)
            except SoftTimeLimitExceeded:
                raise  # the task's time is up: the job core fails every job of the batch with the reason
            except Exception as exc:  # this job's own failure (no category, no model ...): the others go on
                if not isinstance(exc, JobError):
                    logger.exception("job %s failed", claimed.job_id)
                fail(claimed.job_id, claimed.attempt, failure_text(exc))
                continue
            if job_plan is None:  # an earlier attempt attached its images
                succeed(claimed.job_id, claimed.attempt)
            else:
                by_version.setdefault(job_plan.version.pk, []).append((claimed, job_plan))
        for group in by_version.values():
            _run_group(group)


def _report(claimed: Claimed, percent: int, message: str) -> bool:
    """Progress for one job of the set; False when it was cancelled (or its attempt fenced off)."""
    try:
        claimed.progress(percent, message)
    except JobCancelled:
        logger.info("job %s: cancelled while it waited for its pass", claimed.job_id)
        return False
    return True


def _run_group(members: list) -> None:
    """One model version's jobs: their images in shared passes, then each job's own attached to it."""
    version = members[0][1].version
    seeds, conditions, owners = [], [], []
    for claimed, job_plan in members:
        count = len(job_plan.seeds)
        seeds += job_plan.seeds
        conditions += [job_plan.conditions] * count
        owners += [claimed.job_id] * count
    failure = None
    try:
        if len(members) == 1:
            # A lone job says what it waits for; in a shared pass that would be one more row write per job.
            _report(members[0][0], 10, f"Loading {version}")
        sampler = load_sampler(version)
        near_copies.warm(version)
        # Each job's row is written twice (here and before saving): that is where a cancellation is seen.
        note = f"Generating {len(seeds)} images of {len(members)} jobs in shared passes" if len(members) > 1 else f"Generating {len(seeds)} images"
        live = [claimed for claimed, _plan in members if _report(claimed, 30, note)]

        def retry(big: int, small: int, why: str) -> None:
            for claimed in live:
                _report(claimed, 30, f"{why} generating {big} at once; now {small} at a time")

        images, scores, passes = shrinking_batches(
            lambda batch: generate_passes(sampler, seeds, conditions, owners, batch),
            min(len(seeds), settings.INFERENCE_MAX_BATCH), smallest=1, on_retry=retry,
        )
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # the pass failed: every job in it fails with the reason, the worker goes on
        if not isinstance(exc, JobError):
            logger.exception("pass of jobs %s failed", [claimed.job_id for claimed, _plan in members])
        failure = failure_text(exc)
    if failure is not None:
        for claimed, _plan in members:
            fail(claimed.job_id, claimed.attempt, failure)
        release_memory()
        return
    running = {claimed.job_id for claimed in live}
    start = 0
    for claimed, job_plan in members:
        count = len(job_plan.seeds)
        own = slice(start, start + count)
        start += count
        if claimed.job_id not in running or not _report(claimed, 80, "Saving images"):
            continue
        try:
            # It finishes the job too, in the same transaction as its images.
            attach(job_plan, sampler, images[own], scores[own], passes[own], attempt=claimed.attempt)
        except JobCancelled:
            logger.info("job %s: cancelled or taken over while its images were saved; they are discarded", claimed.job_id)
        except SoftTimeLimitExceeded:
            raise
        except Exception as exc:  # e.g. storage refused its files: this job fails, the others are kept
            logger.exception("job %s: could not attach its images", claimed.job_id)
            fail(claimed.job_id, claimed.attempt, failure_text(exc))
