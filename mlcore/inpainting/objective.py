"""The inpainting loss, as pure functions of tensors (images in [0, 1], masks 1 = hole).

L1 rather than L2: L2 regresses to the mean of the plausible fills and smears edges further, and networks
trained with L1 reach a higher PSNR even though PSNR is an L2 measure (Zhao et al. 2017).

Two terms, each normalised by its own pixel count so a mask's coverage does not change its weight:

* **hole**: the task itself. Weighted up (default 6, as Liu et al. 2018 for partial convolutions) because
  holes cover 2-30 % of a crop: with one plain mean over all pixels, copying the visible 70-98 % would
  dominate the gradient and the network would learn the identity long before it learns to fill.
* **valid**: the visible pixels. Only the hole is kept at inference (the rest is composited from the input),
  but this term keeps the output continuous across the hole's edge (the network reproduces the context
  right up to the border, so the fill starts from the right values) and gives every pixel a gradient early on.
"""

from __future__ import annotations

import torch


def masked_l1(output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean |output - target| over the pixels where ``weight`` (N x 1 x H x W, 0/1) is 1, all channels.

    0 (not NaN) when no pixel is selected."""
    total = ((output - target).abs() * weight).sum()
    count = weight.sum() * output.shape[1]
    return total / count.clamp_min(1.0)


def loss_terms(
    output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *, hole_weight: float, valid_weight: float,
) -> dict[str, torch.Tensor]:
    """{"loss": hole_weight * hole + valid_weight * valid, "hole", "valid"} for N x 3 x H x W images and
    N x 1 x H x W masks (1 = hole)."""
    hole = masked_l1(output, target, mask)
    valid = masked_l1(output, target, 1.0 - mask)
    return {"loss": hole_weight * hole + valid_weight * valid, "hole": hole, "valid": valid}
