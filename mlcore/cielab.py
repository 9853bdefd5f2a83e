"""sRGB <-> linear light <-> CIELAB (D65) on batched tensors, differentiable.

Tensors are channel-first: ``... x 3 x H x W`` (any leading dims, e.g. a batch). sRGB and linear values are
floats in [0, 1]; CIELAB is L* in [0, 100] and a*, b* roughly in [-128, 127]. IEC 61966-2-1 matrix, D65
white, as ``mlcore.conditioning.colour`` (one colour in pure Python). Brand look, the background's border
model and the storefront's taste features all convert through here.
"""

from __future__ import annotations

import torch

RGB_TO_XYZ = torch.tensor(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
XYZ_TO_RGB = torch.linalg.inv(RGB_TO_XYZ.double()).float()
WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883])
_DELTA = 6.0 / 29.0


def _channels_first(x: torch.Tensor, name: str) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise ValueError(f"{name} must be ... x 3 x H x W, got {tuple(x.shape)}")


def _mix(matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", matrix.to(x.device, x.dtype), x)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """Undo the sRGB transfer curve: values in [0, 1] -> linear light in [0, 1]."""
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: torch.Tensor) -> torch.Tensor:
    """Apply the sRGB transfer curve; the input is clamped to [0, 1] first (out of gamut clips)."""
    x = linear.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055)


def srgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """CIELAB (D65) of sRGB floats in [0, 1], shape ... x 3 x H x W."""
    _channels_first(rgb, "rgb")
    xyz = _mix(RGB_TO_XYZ, srgb_to_linear(rgb)) / WHITE_D65.to(rgb.device, rgb.dtype)[:, None, None]
    # The clamp keeps the cube root's gradient finite where the linear branch is taken anyway.
    f = torch.where(
        xyz > _DELTA**3, xyz.clamp_min(_DELTA**3) ** (1.0 / 3.0), xyz / (3 * _DELTA**2) + 4.0 / 29.0
    )
    fx, fy, fz = f.unbind(-3)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=-3)


def lab_to_srgb(lab: torch.Tensor) -> torch.Tensor:
    """sRGB floats in [0, 1] of CIELAB (D65) values, ... x 3 x H x W; colours outside the sRGB gamut clip."""
    _channels_first(lab, "lab")
    big_l, a, b = lab.unbind(-3)
    fy = (big_l + 16.0) / 116.0
    f = torch.stack((fy + a / 500.0, fy, fy - b / 200.0), dim=-3)
    xyz = torch.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4.0 / 29.0))
    return linear_to_srgb(_mix(XYZ_TO_RGB, xyz * WHITE_D65.to(lab.device, lab.dtype)[:, None, None]))
