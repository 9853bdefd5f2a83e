"""The inpainting objective: the loss as pure functions of tensors (images in [0, 1], masks 1 = hole), and
``InpaintObjective``, the self-supervised batches the one ``Trainer`` trains on.

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

from collections.abc import Sequence

import torch
from torch import nn

from ..photos import check_photos, random_crop
from ..training.objective import Objective
from .config import InpaintConfig
from .masks import MASK_SIZES, random_mask
from .networks import InpaintNet


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


class InpaintObjective(Objective):
    """An ``InpaintConfig`` model on a shop's photos: uint8 3 x H x W tensors of any sizes (a list), or an
    N x 3 x H x W uint8 tensor, each at least ``crop_size`` on both sides. The EMA copy is what repairs
    (``Inpainter``).

    Self-supervised: each step takes random crops of the training photos at their own resolution, in one of the
    8 flips/rotations, punches a random mask into each (``masks.random_mask``, small or large with equal odds)
    and learns to give the crop back."""

    CONFIG = InpaintConfig
    DEFAULTS = {"batch_size": 8, "betas": (0.9, 0.99), "ema_decay": 0.999}
    LOSS_KEYS = ("loss", "hole", "valid")

    def __init__(
        self, config: InpaintConfig, photos: Sequence[torch.Tensor] | torch.Tensor, *,
        device: torch.device, seed: int, batch_size: int, lr: float = 5e-4,
    ) -> None:
        super().__init__(config, device=device, seed=seed, batch_size=batch_size)
        self.photos = check_photos(photos, config.crop_size)
        self._build_model(InpaintNet, lr)

    def sample_batch(self, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(clean crops N x 3 x S x S in [0, 1], masks N x 1 x S x S, 1 = hole)."""
        size = self.config.crop_size
        sizes = sorted(MASK_SIZES)
        crops, masks = [], []
        for index in torch.randint(len(self.photos), (self.batch_size,), generator=rng).tolist():
            crops.append(random_crop(self.photos[index], size, rng))
            kind = sizes[int(torch.randint(len(sizes), (), generator=rng))]
            masks.append(random_mask(rng, size, size, kind).unsqueeze(0).float())
        return torch.stack(crops), torch.stack(masks)

    def terms(self, batch: tuple[torch.Tensor, torch.Tensor], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
        model = self.model if model is None else model
        clean, mask = batch[0].to(self.device), batch[1].to(self.device)
        return loss_terms(
            model(clean, mask), clean, mask, hole_weight=self.config.hole_weight, valid_weight=self.config.valid_weight,
        )
