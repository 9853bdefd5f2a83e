"""Running out of memory (RAM or GPU) fails a job, never the worker: recognising it, freeing what the
failed attempt held, and trying again with smaller batches where the result does not depend on them."""
import logging
from collections.abc import Callable
from typing import TypeVar

from ..backends import get_backend
from ..jobcore.errors import JobError, unexpected_error_text

logger = logging.getLogger(__name__)

T = TypeVar("T")


def is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or get_backend().is_out_of_memory(exc)


def failure_text(exc: BaseException) -> str:
    """What a failed job's row says: a JobError's own text, which memory ran out, or the unexpected error."""
    if isinstance(exc, JobError):
        return str(exc)
    if is_out_of_memory(exc):
        return f"{describe(exc)}."
    return unexpected_error_text(exc)


def describe(exc: BaseException) -> str:
    """One line for the job's error: which memory ran out, and the allocator's own words."""
    on_gpu = get_backend().on_gpu(exc)
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return f"Out of {'GPU' if on_gpu else 'main'} memory ({first_line})"


def release_memory() -> None:
    """Give back what a failed attempt allocated, so the next attempt (or job) starts with it free."""
    get_backend().release_memory()


def shrinking_batches(
    run: Callable[[int], T], batch: int, *, smallest: int, on_retry: Callable[[int, int, str], None] | None = None
) -> T:
    """``run(batch)``, halving ``batch`` after each out-of-memory failure down to ``smallest``; below that
    the job fails with a JobError that says so. Any other error passes through unchanged."""
    while True:
        failure = None
        try:
            return run(batch)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            failure = describe(exc)
        # Outside the except block: the exception's traceback (and the tensors its frames hold) is gone.
        release_memory()
        if batch <= smallest:
            raise JobError(
                f"{failure} even with batches of {batch}. Give the worker more memory, or use a smaller image size."
            )
        smaller = max(smallest, batch // 2)
        logger.warning("%s at batch size %s; retrying with %s", failure, batch, smaller)
        if on_retry is not None:
            on_retry(batch, smaller, failure)
        batch = smaller
