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


def save_pair_grid(left: torch.Tensor, right: torch.Tensor, target: PlotTarget, pairs_per_row: int = 4) -> None:
    """Save uint8 images side by side in pairs (``left[i]`` then ``right[i]``), ``pairs_per_row`` pairs a row."""
    if len(left) != len(right) or len(left) == 0:
        raise ValueError(f"need as many right images as left ones, and some: {len(left)} and {len(right)}")
    pairs = torch.stack([left, right], dim=1).flatten(0, 1).detach().cpu().float().div(255.0)
    save_image(pairs, target, nrow=2 * pairs_per_row, padding=2, pad_value=1.0, format="png")


def save_loss_curves(history: dict[str, list[float]], target: PlotTarget) -> None:
    """Plot every recorded term (a GAN's d_loss/g_loss/d_real/d_fake, a VAE's loss/recon/kl) against
    step, one panel each (their scales differ by orders of magnitude), as PNG."""
    # A bare Figure needs no pyplot and no backend switch, so it is safe in web workers.
    steps = history.get("step", [])
    keys = [key for key, values in history.items() if key != "step" and values]
    fig = Figure(figsize=(max(3.2 * len(keys), 4.0), 3.0), dpi=100)
    for ax, key in zip(fig.subplots(1, max(len(keys), 1), squeeze=False)[0], keys or [None]):
        if key is not None:
            ax.plot(steps, history[key])
            ax.set_title(key)
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(target, format="png")
