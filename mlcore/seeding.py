"""Seeded randomness that means the same on every device: network initialisation and fixed noise.

Both draw on the CPU and leave the caller's random state alone: CUDA generators produce other streams, and a
caller's own draws must not shift because a network was built or a grid was sampled in between.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch


def build_seeded(build: Callable[[], Any], seed: int) -> Any:
    """``build()`` with the global RNG seeded by ``seed`` on the CPU, leaving the caller's random state alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def sample_noise(count: int, z_dim: int, seed: int) -> torch.Tensor:
    """Standard normal noise, count x z_dim, drawn on a CPU generator (then moved by the caller, if needed)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(count, z_dim, generator=generator)
