"""Cross-job batching on the inference workers: generate jobs served by the same model version share one
forward pass, so a hundred single-image jobs do not cost a hundred passes.

A worker that runs a generate job also claims other claimable generate jobs of the same kind, oldest
first, until the pass holds IMAGEGEN_INFERENCE_MAX_BATCH images or IMAGEGEN_INFERENCE_BATCH_WAIT seconds
have gone by. Each job is claimed with its own conditional update and attempt number, exactly as
``jobs.claim`` does for one: a job another worker took first is skipped, and the Celery message of a job
taken here later finds nothing to claim. One heartbeat thread keeps every lease of the set alive. The
jobs are grouped by the model version that serves their product's category, and each group is made in
passes of at most MAX_BATCH images, each image with its own product's conditions and its own seed; then
every job gets exactly its own images and is finished on its own: a job whose product has no category or
no model fails alone with its reason, and a job cancelled meanwhile is left cancelled.
"""
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded

from ..conf import settings
from ..models import Job
from . import near_copies
from .generation import Plan, attach, generate_passes, plan
from .jobs import JobCancelled, JobError, ProgressReporter, _finish, claim, claimable
from .leases import Heartbeat
from .memory import failure_text, release_memory, shrinking_batches
from .model_registry import load_sampler

logger = logging.getLogger(__name__)

# Seconds between looks at the job table while a pass waits for more jobs: one indexed query each.
POLL_INTERVAL = 0.01


@dataclass
class Held:
    """A job this worker claimed for a batched pass, under ``attempt``."""

    job_id: int
    attempt: int
    plan: Plan | None = None

    def __post_init__(self) -> None:
        self.progress = ProgressReporter(self.job_id, attempt=self.attempt)


def _image_counts(job_ids: Sequence[int]) -> dict[int, int]:
    rows = Job.objects.filter(pk__in=list(job_ids), kind=Job.Kind.GENERATE).values_list("pk", "parameters__count")
    return {pk: int(count or 1) for pk, count in rows}


def gather(kind: str, room: int, *, exclude: Sequence[int] = (), wait: float | None = None) -> list[Held]:
    """Claim further generate jobs of generator ``kind``, oldest first, holding at most ``room`` images in
    all, looking again for ``wait`` seconds (IMAGEGEN_INFERENCE_BATCH_WAIT) while there is room."""
    wait = settings.INFERENCE_BATCH_WAIT if wait is None else wait
    deadline = time.monotonic() + wait
    held: list[Held] = []
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
                held.append(Held(job_id, attempt))
                room -= count
        if room <= 0 or time.monotonic() >= deadline:
            break
        time.sleep(POLL_INTERVAL)
    return held


def execute_generate(job_ids: Sequence[int], *, gather_more: bool = False) -> list[Job]:
    """Claim and run the listed generate jobs in batched passes of at most IMAGEGEN_INFERENCE_MAX_BATCH
    images, in their order; with ``gather_more`` each pass that has room also takes queued generate jobs
    of the same kind. Returns every job claimed here (listed or gathered), in its final state."""
    counts = _image_counts(job_ids)
    pending = [job_id for job_id in job_ids if job_id in counts]
    limit = settings.INFERENCE_MAX_BATCH
    done: list[Job] = []
    while pending:
        held, images = [], 0
        while pending and (not held or images + counts[pending[0]] <= limit):
            job_id = pending.pop(0)
            attempt = claim(job_id)
            if attempt is not None:
                held.append(Held(job_id, attempt))
                images += counts[job_id]
        if not held:
            continue
        if gather_more and images < limit:
            kind = Job.objects.values_list("parameters__kind", flat=True).get(pk=held[0].job_id)
            held += gather(kind, limit - images, exclude=[h.job_id for h in held] + pending)
        done += run_claimed(held)
    return done


def execute_gathering(job_id: int, attempt: int) -> Job:
    """Run a generate job this worker has claimed (under ``attempt``) together with queued generate jobs
    of its kind gathered into the same passes; returns the job in its final state."""
    first = Held(job_id, attempt)
    job = Job.objects.get(pk=job_id)
    room = settings.INFERENCE_MAX_BATCH - int(job.parameters.get("count", 1))
    others = gather(job.parameters["kind"], room, exclude=[job_id]) if room > 0 else []
    run_claimed([first, *others])
    job.refresh_from_db()
    return job


def _fail(entry: Held, error: str) -> None:
    _finish(entry.job_id, Job.State.FAILED, entry.attempt, error=error, message="Failed")


def _report(entry: Held, percent: int, message: str) -> bool:
    """Progress for one job of the set; False when it was cancelled (or its attempt fenced off)."""
    try:
        entry.progress(percent, message)
    except JobCancelled:
        logger.info("job %s: cancelled while it waited for its pass", entry.job_id)
        return False
    return True


def run_claimed(held: list[Held]) -> list[Job]:
    """Run claimed generate jobs to their final states in one pass (or a few) per model version."""
    with Heartbeat({h.job_id: h.attempt for h in held}):
        try:
            _run(held)
        except SoftTimeLimitExceeded:
            for entry in held:
                _fail(entry, f"Stopped: the job ran past the time limit of {settings.TASK_SOFT_TIME_LIMIT} seconds.")
    return list(Job.objects.filter(pk__in=[h.job_id for h in held]).order_by("created_at", "id"))


def _run(held: list[Held]) -> None:
    ready: list[Held] = []
    for entry in held:
        try:
            entry.plan = plan(Job.objects.get(pk=entry.job_id))
        except Exception as exc:  # this job's own failure (no category, no model ...): the others go on
            if not isinstance(exc, JobError):
                logger.exception("job %s failed", entry.job_id)
            _fail(entry, failure_text(exc))
            continue
        if entry.plan is None:  # an earlier attempt attached its images
            _finish(entry.job_id, Job.State.SUCCEEDED, entry.attempt, progress=100, message="Done")
        else:
            ready.append(entry)
    by_version: dict[int, list[Held]] = {}
    for entry in ready:
        by_version.setdefault(entry.plan.version.pk, []).append(entry)
    for group in by_version.values():
        _run_group(group)


def _run_group(members: list[Held]) -> None:
    """One model version's jobs: their images in shared passes, then each job's own attached to it."""
    version = members[0].plan.version
    seeds, conditions, owners = [], [], []
    for entry in members:
        count = len(entry.plan.seeds)
        seeds += entry.plan.seeds
        conditions += [entry.plan.conditions] * count
        owners += [entry.job_id] * count
    failure = None
    try:
        sampler = load_sampler(version)
        near_copies.warm(version)
        # Each job's row is written twice (here and before saving): that is where a cancellation is seen.
        note = f"Generating {len(seeds)} images of {len(members)} jobs in shared passes"
        live = [e for e in members if _report(e, 30, note)]

        def retry(big: int, small: int, why: str) -> None:
            for entry in live:
                _report(entry, 30, f"{why} generating {big} at once; now {small} at a time")

        images, scores, passes = shrinking_batches(
            lambda batch: generate_passes(sampler, seeds, conditions, owners, batch),
            min(len(seeds), settings.INFERENCE_MAX_BATCH), smallest=1, on_retry=retry,
        )
    except Exception as exc:  # the pass failed: every job in it fails with the reason, the worker goes on
        logger.exception("batched pass of jobs %s failed", [e.job_id for e in members])
        failure = failure_text(exc)
    if failure is not None:
        for entry in members:
            _fail(entry, failure)
        release_memory()
        return
    running = {e.job_id for e in live}
    start = 0
    for entry in members:
        count = len(entry.plan.seeds)
        own = slice(start, start + count)
        start += count
        if entry.job_id not in running or not _report(entry, 80, "Saving images"):
            continue
        try:
            # It finishes the job too, in the same transaction as its images.
            attach(entry.plan, sampler, images[own], scores[own], passes[own], attempt=entry.attempt)
        except JobCancelled:
            logger.info("job %s: cancelled or taken over while its images were saved; they are discarded", entry.job_id)
        except Exception as exc:  # e.g. storage refused its files: this job fails, the others are kept
            logger.exception("job %s: could not attach its images", entry.job_id)
            _fail(entry, failure_text(exc))
