"""Random but plausible colour/tone changes of photos: what training learns to map between.

A ``Grade`` holds one set of parameters per image (tensors with the batch as first dim) and is applied in the
order a raw converter applies them: white balance and exposure on linear light, then a global tone curve
(black lift, white roll-off, S-curve contrast, gamma) and per-channel gammas (split toning) on sRGB values,
then saturation and a hue rotation around the grey axis. Every step is monotone in its channel or a
rotation/scale of chroma, and everything ends clipped to [0, 1], like a photo editor's export.

``random_grades`` draws each step independently with probability ``step_p`` (else leaves it at identity), so
batches mix single edits, combinations and no edit at all, uniformly in ``RANGES`` times ``scale``. RANGES are
what a different camera or light plausibly does; a brand's grade is deliberate and often stronger (training
draws brand grades at ``BRAND`` = 1.5 x RANGES and shooting differences at ``SHOOTING``). All draws come from
the caller's ``torch.Generator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from ..cielab import linear_to_srgb, srgb_to_linear

# (low, high) of each parameter; log gains and gammas are drawn uniformly in log space.
RANGES: dict[str, tuple[float, float]] = {
    "wb_red": (-0.3, 0.3),  # log gain of red against green (~ x0.74 .. x1.35)
    "wb_blue": (-0.3, 0.3),
    "exposure": (-0.7, 0.7),  # EV (stops)
    "black": (0.0, 0.15),  # output level of black (fade)
    "white": (0.0, 0.12),  # how far white is pulled down
    "contrast": (-0.5, 0.5),  # S-curve amount; slope at mid-grey is 1 + contrast
    "gamma": (-0.3, 0.3),  # log gamma
    "channel_gamma": (-0.15, 0.15),  # log gamma per channel: tints shadows and highlights differently
    "saturation": (-0.6, 0.45),  # log saturation (~ x0.55 .. x1.57)
    "hue": (-math.radians(20), math.radians(20)),  # rotation about the grey axis
}
# (step_p, scale) of the two kinds of change training draws.
BRAND = (0.6, 1.5)
SHOOTING = (0.5, 0.7)
# Rec. 601 luma weights on sRGB values: the grey each colour keeps when saturation goes to zero.
LUMA = (0.299, 0.587, 0.114)


@dataclass
class Grade:
    """Parameters per image; every field is a float tensor of shape (N,) except ``channel_gamma`` (N x 3)."""

    wb_red: torch.Tensor
    wb_blue: torch.Tensor
    exposure: torch.Tensor
    black: torch.Tensor
    white: torch.Tensor
    contrast: torch.Tensor
    gamma: torch.Tensor
    channel_gamma: torch.Tensor
    saturation: torch.Tensor
    hue: torch.Tensor

    def __len__(self) -> int:
        return len(self.exposure)

    def repeat_interleave(self, times: int) -> Grade:
        """Each image's parameters ``times`` times in a row (for grading several photos alike)."""
        return Grade(**{f.name: getattr(self, f.name).repeat_interleave(times, dim=0) for f in fields(self)})

    @classmethod
    def identity(cls, n: int) -> Grade:
        """No change for ``n`` images."""
        return cls(**{f.name: torch.zeros(n, 3) if f.name == "channel_gamma" else torch.zeros(n) for f in fields(cls)})

    @classmethod
    def fixed(cls, n: int = 1, **values: float | tuple[float, float, float]) -> Grade:
        """The same named parameters for ``n`` images (the rest at identity)."""
        grade = cls.identity(n)
        for name, value in values.items():
            if name not in {f.name for f in fields(cls)}:
                raise ValueError(f"unknown grade parameter {name!r}")
            setattr(grade, name, torch.tensor(value, dtype=torch.float32).expand_as(getattr(grade, name)).clone())
        return grade


def random_grades(n: int, generator: torch.Generator, *, step_p: float = 0.5, scale: float = 1.0) -> Grade:
    """``n`` random grades; each step is on with probability ``step_p``, drawn uniformly in ``scale`` x ``RANGES``
    (scale < 2, so the S-curve stays monotone)."""
    if not 0.0 <= scale < 2.0:
        raise ValueError(f"scale must be in [0, 2), got {scale}")
    values = {}
    for f in fields(Grade):
        shape = (n, 3) if f.name == "channel_gamma" else (n,)
        low, high = (scale * v for v in RANGES[f.name])
        draw = torch.rand(shape, generator=generator) * (high - low) + low
        on = torch.rand((n,), generator=generator) < step_p
        values[f.name] = draw * (on[:, None] if draw.dim() == 2 else on)
    return Grade(**values)


def _per_image(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return value.to(like.device, like.dtype).reshape(len(value), *([1] * (like.dim() - 1)))


def hue_rotation(angle: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (N x 3 x 3) about the grey axis (1, 1, 1) / sqrt(3) by ``angle`` (Rodrigues)."""
    k = torch.full((3,), 1.0 / math.sqrt(3.0), dtype=angle.dtype)
    cross = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=angle.dtype)
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    return cos * torch.eye(3, dtype=angle.dtype) + sin * cross + (1.0 - cos) * torch.outer(k, k)


def apply_grade(rgb: torch.Tensor, grade: Grade) -> torch.Tensor:
    """``rgb`` (N x 3 x H x W, floats in [0, 1]) graded by ``grade`` (N parameter sets), clipped to [0, 1]."""
    if rgb.dim() != 4 or rgb.shape[1] != 3 or len(grade) != rgb.shape[0]:
        raise ValueError(f"rgb must be N x 3 x H x W with N = {len(grade)} grades, got {tuple(rgb.shape)}")
    g = lambda value: _per_image(value, rgb)  # noqa: E731
    linear = srgb_to_linear(rgb)
    gains = torch.stack((grade.wb_red, torch.zeros_like(grade.wb_red), grade.wb_blue), dim=1) + grade.exposure[:, None] * math.log(2.0)
    x = linear_to_srgb(linear * torch.exp(gains).to(rgb)[:, :, None, None])
    x = g(grade.black) + (1.0 - g(grade.black) - g(grade.white)) * x
    # slope 1 - c cos(2 pi x) > 0 for |c| < 1: a monotone S (c > 0) or flattening (c < 0) through 0, 1/2, 1.
    x = x - g(grade.contrast) * torch.sin(2.0 * math.pi * x) / (2.0 * math.pi)
    # (x^a)^b = x^(ab): the global and the per-channel gamma in one power.
    x = x.clamp(0.0, 1.0) ** torch.exp(grade.gamma[:, None] + grade.channel_gamma).to(rgb)[:, :, None, None]
    luma = torch.einsum("c,nchw->nhw", torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device), x)[:, None]
    x = luma + g(torch.exp(grade.saturation)) * (x - luma)
    x = torch.einsum("nij,njhw->nihw", hue_rotation(grade.hue.double()).to(rgb), x)
    return x.clamp(0.0, 1.0)
