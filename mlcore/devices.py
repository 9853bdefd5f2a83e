"""Turn a device name from settings ("cpu", "cuda", "auto") into a torch.device."""

from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA when available, else the CPU; asking for a missing CUDA raises ``ValueError``."""
    if isinstance(device, torch.device):
        name = device.type
    else:
        name = str(device).strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available")
        return torch.device(device) if isinstance(device, torch.device) else torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'auto'")


def process_device(device: str | torch.device, index: int) -> torch.device:
    """The device of worker process number ``index`` (0, 1, ...) on a machine with several GPUs.

    "auto" and "cuda" without a number spread the processes over the GPUs round robin and make that GPU
    the process's current one, so that a worker started with ``--concurrency`` = number of GPUs holds one
    model copy per GPU; "cuda:N" and "cpu" stay as given."""
    resolved = resolve_device(device)
    count = torch.cuda.device_count() if resolved.type == "cuda" else 0
    if resolved.type == "cuda" and resolved.index is None and count > 1:
        resolved = torch.device("cuda", index % count)
        torch.cuda.set_device(resolved)
    return resolved
