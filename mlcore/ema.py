"""Exponential moving average of the generator's weights (used for sampling)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence

import torch
from torch import nn


def make_ema(model: nn.Module) -> nn.Module:
    """A frozen deep copy of ``model`` in eval mode, to be updated with ``update_ema``."""
    ema = copy.deepcopy(model).eval()
    ema.requires_grad_(False)
    return ema


def ema_decay_at(step: int, decay: float) -> float:
    """Decay for the EMA update after ``step`` steps, ramped up from 0.

    Without the ramp the first thousand steps' average is dominated by the
    random initial weights and early samples look worse than the raw generator.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema = decay * ema + (1 - decay) * model for parameters; buffers are copied."""
    for ema_p, p in zip(ema.parameters(), model.parameters(), strict=True):
        ema_p.lerp_(p.detach(), 1.0 - decay)
    for ema_b, b in zip(ema.buffers(), model.buffers(), strict=True):
        ema_b.copy_(b)


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[Sequence[torch.Tensor]]) -> None:
    """Recompute ``model``'s BatchNorm running statistics from its own forward passes.

    The EMA generator copies the raw generator's running statistics, but those
    were measured on different weights; sampling in eval mode with them gives
    washed-out or saturated images. Averaging statistics over a few batches of
    the EMA model itself ("standing statistics", Brock et al. 2019) fixes that.
    Leaves the model in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # None = cumulative average over the batches below
    model.train()
    try:
        for args in batches:
            model(*args)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        model.eval()
