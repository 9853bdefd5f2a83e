"""PNG figures for the UI: sample grids and loss curves. Headless (no GUI backend)."""

from __future__ import annotations

import os
from typing import BinaryIO

import torch
from matplotlib.figure import Figure
from torchvision.utils import save_image

PlotTarget = str | os.PathLike | BinaryIO


def save_sample_grid(images: torch.Tensor, target: PlotTarget, nrow: int) -> None:
    """Save N x 3 x S x S images in [-1, 1] as one PNG grid with ``nrow`` images per row."""
    save_image(images.detach().cpu(), target, nrow=nrow, padding=2, normalize=True,
               value_range=(-1.0, 1.0), pad_value=1.0, format="png")


def save_loss_curves(history: dict[str, list[float]], target: PlotTarget) -> None:
    """Plot D/G losses (and mean D logits on real/fake, when present) against step, as PNG."""
    # A bare Figure needs no pyplot and no backend switch, so it is safe in web workers.
    fig = Figure(figsize=(8, 3.2), dpi=100)
    steps = history.get("step", [])
    loss_ax, logit_ax = fig.subplots(1, 2)
    for key, label in (("d_loss", "discriminator"), ("g_loss", "generator")):
        if history.get(key):
            loss_ax.plot(steps, history[key], label=label)
    loss_ax.set_title("losses")
    loss_ax.set_xlabel("step")
    loss_ax.legend(loc="best")
    for key, label in (("d_real", "D(real)"), ("d_fake", "D(fake)")):
        if history.get(key):
            logit_ax.plot(steps, history[key], label=label)
    logit_ax.set_title("mean discriminator logits")
    logit_ax.set_xlabel("step")
    logit_ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(target, format="png")
