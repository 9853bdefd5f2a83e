"""The registry of runners: one per kind of job, declared by the module that does that work.

A runner runs jobs this worker has claimed to their final states. Every runner takes a batch: a single
job is a batch of one, and a runner that can share work between jobs (generate jobs share forward passes)
says so by packing and gathering bigger batches.
"""
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from django.utils.translation import gettext as _

from ..conf import settings
from ..models import Job
from .errors import unexpected_error_text
from .progress import ProgressCallback, ProgressReporter
from .states import claim


@dataclass
class Claimed:
    """A job this worker claimed, under ``attempt``."""

    job_id: int
    attempt: int
    on_progress: ProgressCallback | None = None
    progress: ProgressReporter = field(init=False)

    def __post_init__(self) -> None:
        self.progress = ProgressReporter(self.job_id, self.on_progress, attempt=self.attempt)

    @cached_property
    def job(self) -> Job:
        return Job.objects.get(pk=self.job_id)


class Runner:
    """How one kind of job runs. Subclasses set ``kind`` and implement ``run``; the rest has defaults."""

    kind: str = ""
    # The Celery task that carries this kind's job ids, as a dotted path (imported when a job is sent, so
    # the core needs no import of the tasks module, which imports the work).
    task: str = "imagegen.tasks.run_job"

    def run(self, batch: list[Claimed]) -> None:
        """Run the claimed jobs to their final states (``states.storing_results`` / ``states.fail``).

        A job still held when this returns is marked done; an exception fails every job still held."""
        raise NotImplementedError

    def queue(self) -> str:
        return settings.QUEUE

    def time_limits(self) -> dict[str, int]:
        """Limits sent with each message, read now rather than when the worker imported the task module."""
        return {}

    def soft_time_limit(self) -> int:
        return self.time_limits().get("soft_time_limit", settings.TASK_SOFT_TIME_LIMIT)

    def time_limit_text(self) -> str:
        """Why a job stopped at its task's soft time limit."""
        return _("Stopped: the job ran past the time limit of %(seconds)s seconds.") % {"seconds": self.soft_time_limit()}

    def failure_text(self, exc: BaseException) -> str:
        """What a failed job's row says about an exception the runner did not expect."""
        return unexpected_error_text(exc)

    def after_failure(self, exc: BaseException) -> None:
        """Clean up after an unexpected failure (free memory the failed attempt held)."""

    def gather(self, first: Claimed) -> list[Claimed]:
        """Further claimable jobs to run in one batch with ``first`` (a worker's task with gathering on)."""
        return []

    def batches(self, job_ids: list[int], *, gather: bool = False) -> Iterator[list[Claimed]]:
        """Claim ``job_ids`` (one task of a bulk operation) batch by batch: by default one job each."""
        for job_id in job_ids:
            attempt = claim(job_id)
            if attempt is not None:
                yield [Claimed(job_id, attempt)]


_RUNNERS: dict[str, Runner] = {}


def register(runner_class: type[Runner]) -> type[Runner]:
    """Class decorator: the runner of ``runner_class.kind``; a kind has one runner."""
    kind = runner_class.kind
    existing = _RUNNERS.get(kind)
    if existing is not None and type(existing) is not runner_class:
        raise RuntimeError(f"Job kind {kind!r} already has a runner: {type(existing).__qualname__}")
    _RUNNERS[kind] = runner_class()
    return runner_class


def runner_for(kind: str) -> Runner:
    try:
        return _RUNNERS[kind]
    except KeyError:
        raise LookupError(
            f"No runner is registered for jobs of kind {kind!r} (registered: {', '.join(sorted(_RUNNERS))})"
        ) from None


def registered() -> Iterable[str]:
    return tuple(_RUNNERS)
