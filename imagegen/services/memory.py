"""Running out of memory (RAM or GPU) fails a job, never the worker: recognising it, freeing what the
failed attempt held, and trying again with smaller batches where the result does not depend on them."""
import gc
import logging
from collections.abc import Callable
from typing import TypeVar

from .jobs import JobError

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What PyTorch's CPU allocator, CUDA's caching allocator and the C library say when an allocation fails,
# and what oneDNN (PyTorch's CPU convolutions) says when it cannot allocate a kernel's workspace.
_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory", "could not create a primitive")


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    try:
        import torch
    except ImportError:  # a web process without torch cannot be out of GPU memory
        torch = None
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc).lower() for text in _MESSAGES)


# How the error of a job that raised something unforeseen begins (a torchrun restart looks for it).
UNEXPECTED_PREFIX = "Unexpected error ("


def failure_text(exc: BaseException) -> str:
    """What a failed job's row says: a JobError's own text, which memory ran out, or the unexpected error."""
    if isinstance(exc, JobError):
        return str(exc)
    if is_out_of_memory(exc):
        return f"{describe(exc)}."
    return f"{UNEXPECTED_PREFIX}{type(exc).__name__}): {exc}"


def describe(exc: BaseException) -> str:
    """One line for the job's error: which memory ran out, and the allocator's own words."""
    try:
        import torch

        on_gpu = isinstance(exc, torch.OutOfMemoryError)
    except ImportError:
        on_gpu = False
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return f"Out of {'GPU' if on_gpu else 'main'} memory ({first_line})"


def release_memory() -> None:
    """Give back what a failed attempt allocated, so the next attempt (or job) starts with it free."""
    gc.collect()
    try:
        import torch
    except ImportError:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


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
