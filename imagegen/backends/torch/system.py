"""Memory, devices and processes as torch sees them."""
import gc
import os

import torch
from mlcore import distributed as _distributed
from mlcore.devices import process_device, resolve_device  # noqa: F401  (backend methods)

# What PyTorch's CPU allocator, CUDA's caching allocator and the C library say when an allocation fails,
# and what oneDNN (PyTorch's CPU convolutions) says when it cannot allocate a kernel's workspace.
_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory", "could not create a primitive")


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, torch.OutOfMemoryError)):
        return True
    return isinstance(exc, RuntimeError) and any(text in str(exc).lower() for text in _MESSAGES)


def on_gpu(exc: BaseException) -> bool:
    """Whether an out-of-memory error is the GPU's."""
    return isinstance(exc, torch.OutOfMemoryError)


def release_memory() -> None:
    """Give back what a failed attempt allocated, so the next attempt (or job) starts with it free."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def check_processes(nproc: int, device: str) -> str | None:
    """Why ``nproc`` processes cannot train on ``device`` on this machine, or None when they can."""
    if nproc < 1:
        return f"--nproc must be at least 1, got {nproc}."
    kind = device.split(":")[0].strip().lower()
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda":
        if ":" in device:
            return f"Give --device cuda, not {device}: each process takes the GPU of its local rank (cuda:0 to cuda:{nproc - 1})."
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if nproc > available:
            return f"--nproc {nproc} with --device cuda needs {nproc} GPUs; this machine has {available}."
        return None
    if kind == "cpu":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        if nproc > cores:
            return f"--nproc {nproc} on the CPU needs {nproc} cores; this machine has {cores}."
        return None
    return f"Distributed training runs on cpu or cuda, not {device!r}."


def distributed():
    """mlcore's process-group helpers (initialise, active, broadcast_object, barrier, teardown)."""
    return _distributed
