"""sRGB -> CIELAB of whole photos (``mlcore.cielab``), and the colour distance the border model thresholds."""

from __future__ import annotations

import torch

from .. import cielab
from ..cielab import lab_to_srgb

__all__ = ["DARKER_WEIGHT", "LIGHTNESS_WEIGHT", "lab_to_srgb", "srgb_to_lab", "weighted_delta_e"]

# Lightness counts half as much as hue and chroma: the uneven light of a phone photo changes a
# backdrop's lightness far more than its hue (the reasoning of the colour naming's CMC-like 2:1
# weighting). Darker than the reference counts less again: that is what a product's own shadow on its
# backdrop looks like, while a dark garment on a light backdrop is still far away (black on white:
# 80 L* units -> 28).
LIGHTNESS_WEIGHT = 0.5
DARKER_WEIGHT = 0.35


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65) of sRGB pixels: ``rgb`` is 3 x H x W (uint8, or float in [0, 1]) -> float 3 x H x W."""
    if rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"rgb must be 3 x H x W, got {tuple(rgb.shape)}")
    return cielab.srgb_to_lab(rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float())


def weighted_delta_e(lab: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-pixel distance of the CIELAB tensor ``lab`` (3 x ...) from ``reference``, lightness weighted by
    ``LIGHTNESS_WEIGHT`` (``DARKER_WEIGHT`` where ``lab`` is the darker)."""
    diff = lab - reference
    weight = torch.where(diff[0] < 0, DARKER_WEIGHT, LIGHTNESS_WEIGHT)
    return torch.sqrt((weight * diff[0]) ** 2 + diff[1] ** 2 + diff[2] ** 2)
