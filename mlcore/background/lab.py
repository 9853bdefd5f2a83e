"""sRGB -> CIELAB on tensors, and the colour distance the border model thresholds.

The same D65 constants as ``mlcore.conditioning.colour.srgb_to_lab`` (which works on one colour in pure
Python), vectorised for whole images.
"""

from __future__ import annotations

import torch

_RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])
_EPSILON = (6.0 / 29.0) ** 3

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
    x = rgb.float() / 255.0 if rgb.dtype == torch.uint8 else rgb.float()
    linear = torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,jhw->ihw", _RGB_TO_XYZ, linear) / _WHITE[:, None, None]
    f = torch.where(xyz > _EPSILON, xyz.clamp_min(_EPSILON) ** (1.0 / 3.0), xyz / (3 * (6.0 / 29.0) ** 2) + 4.0 / 29.0)
    return torch.stack((116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])))


def weighted_delta_e(lab: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per-pixel distance of the CIELAB tensor ``lab`` (3 x ...) from ``reference``, lightness weighted by
    ``LIGHTNESS_WEIGHT`` (``DARKER_WEIGHT`` where ``lab`` is the darker)."""
    diff = lab - reference
    weight = torch.where(diff[0] < 0, DARKER_WEIGHT, LIGHTNESS_WEIGHT)
    return torch.sqrt((weight * diff[0]) ** 2 + diff[1] ** 2 + diff[2] ** 2)


def lab_to_srgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of ``srgb_to_lab``: CIELAB 3 x ... to sRGB in [0, 1] (clamped)."""
    fy = (lab[0] + 16.0) / 116.0
    fx, fz = fy + lab[1] / 500.0, fy - lab[2] / 200.0
    delta = 6.0 / 29.0

    def finv(t: torch.Tensor) -> torch.Tensor:
        return torch.where(t > delta, t**3, 3 * delta * delta * (t - 4.0 / 29.0))

    xyz = torch.stack((finv(fx) * 0.95047, finv(fy), finv(fz) * 1.08883))
    matrix = torch.tensor(
        [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
    )
    linear = torch.einsum("ij,jhw->ihw", matrix, xyz).clamp(0.0, 1.0)
    return torch.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055).clamp(0.0, 1.0)
