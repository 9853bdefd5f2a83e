"""Procedural backdrops for composites: flat and graded colours, stripes, checks, noise (carpet,
marble, wood-like), dots, and patches of real photos' backgrounds.

Each function draws from a CPU ``torch.Generator`` only, so a seed fixes every backdrop, and returns
float 3 x H x W in [0, 1]. ``random_backdrop`` picks a family; the mix is what makes a segmenter
learn "garment against anything" rather than "garment against one kind of floor".
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Backdrop = Callable[[torch.Generator, int, int], torch.Tensor]


def _uniform(gen: torch.Generator, low: float = 0.0, high: float = 1.0) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


def _colour(gen: torch.Generator) -> torch.Tensor:
    """A random colour, drawn so greys, pastels and saturated colours all occur."""
    base = torch.rand(3, generator=gen)
    grey = torch.rand((), generator=gen)
    mix = _uniform(gen, 0.0, 1.0) ** 2  # often near-neutral: walls, sheets, floors
    return (mix * base + (1 - mix) * grey).clamp(0, 1)


def _coords(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates scaled by the shorter side, so patterns keep their shape on any aspect."""
    side = min(height, width)
    y = (torch.arange(height, dtype=torch.float32)[:, None] - height / 2) / side
    x = (torch.arange(width, dtype=torch.float32)[None, :] - width / 2) / side
    return y.expand(height, width), x.expand(height, width)


def _blend(weight: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    return first[:, None, None] * (1 - weight) + second[:, None, None] * weight


def flat(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    return _colour(gen)[:, None, None].expand(3, height, width).clone()


def linear_gradient(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    y, x = _coords(height, width)
    angle = _uniform(gen, 0, 2 * math.pi)
    t = (x * math.cos(angle) + y * math.sin(angle) + 0.75) / 1.5
    return _blend(t.clamp(0, 1), _colour(gen), _colour(gen))


def radial_gradient(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    y, x = _coords(height, width)
    cy, cx = _uniform(gen, -0.3, 0.3), _uniform(gen, -0.3, 0.3)
    t = torch.sqrt((x - cx) ** 2 + (y - cy) ** 2) / _uniform(gen, 0.5, 1.2)
    return _blend(t.clamp(0, 1), _colour(gen), _colour(gen))


def _wave(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    """A 0..1 stripe profile at a random angle, period and edge softness."""
    y, x = _coords(height, width)
    angle = _uniform(gen, 0, math.pi)
    period = _uniform(gen, 0.02, 0.25)
    phase = (x * math.cos(angle) + y * math.sin(angle)) / period * 2 * math.pi
    sharpness = _uniform(gen, 1.0, 12.0)
    return torch.sigmoid(sharpness * (torch.sin(phase) + _uniform(gen, -0.5, 0.5)))


def stripes(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    return _blend(_wave(gen, height, width), _colour(gen), _colour(gen))


def checks(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    """Plaid or gingham: a second stripe set in its own colour laid half-transparent across the first."""
    first = _blend(_wave(gen, height, width), _colour(gen), _colour(gen))
    cross = _uniform(gen, 0.3, 0.7) * _wave(gen, height, width)
    return first * (1 - cross) + cross * _colour(gen)[:, None, None]


def _fractal(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    """Value noise summed over octaves, normalised to 0..1: carpets, stone, crumpled sheets."""
    total = torch.zeros(height, width)
    base = int(_uniform(gen, 2, 8))
    amplitude, weight = 1.0, 0.0
    persistence = _uniform(gen, 0.35, 0.75)
    for octave in range(6):
        cells = base * 2**octave
        if cells > max(height, width):
            break
        grid = torch.rand(1, 1, cells + 1, cells + 1, generator=gen)
        total += amplitude * F.interpolate(grid, size=(height, width), mode="bicubic", align_corners=True)[0, 0]
        weight += amplitude
        amplitude *= persistence
    total /= weight
    low, high = total.min(), total.max()
    return (total - low) / (high - low + 1e-6)


def noise(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    """Fractal noise through a three-colour ramp."""
    value = _fractal(gen, height, width)
    low, middle, high = _colour(gen), _colour(gen), _colour(gen)
    return torch.where(
        value < 0.5, _blend(value * 2, low, middle), _blend((value - 0.5) * 2, middle, high)
    )


def grain(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    """Wood or marble: sine bands bent by fractal noise."""
    y, x = _coords(height, width)
    angle = _uniform(gen, 0, math.pi)
    bend = _fractal(gen, height, width) * _uniform(gen, 1.0, 8.0)
    bands = torch.sin((x * math.cos(angle) + y * math.sin(angle)) * _uniform(gen, 8, 40) + bend) * 0.5 + 0.5
    return _blend(bands, _colour(gen), _colour(gen))


def dots(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    y, x = _coords(height, width)
    spacing = _uniform(gen, 0.04, 0.2)
    radius = spacing * _uniform(gen, 0.15, 0.45)
    cy, cx = torch.remainder(y, spacing) - spacing / 2, torch.remainder(x, spacing) - spacing / 2
    inside = torch.sigmoid((radius - torch.sqrt(cx**2 + cy**2)) * 2000)
    return _blend(inside, _colour(gen), _colour(gen))


def pixel_noise(gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    """A flat colour under strong per-pixel noise (a speckled rug, a sensor in the dark)."""
    base = _colour(gen)[:, None, None]
    return (base + _uniform(gen, 0.05, 0.25) * torch.randn(3, height, width, generator=gen)).clamp(0, 1)


PROCEDURAL: tuple[Backdrop, ...] = (
    flat, linear_gradient, radial_gradient, stripes, checks, noise, grain, dots, pixel_noise,
)
# Share of backdrops cut from real photos when a bank of them is given.
PHOTO_SHARE = 0.35


def photo_patch(bank: torch.Tensor, gen: torch.Generator, height: int, width: int) -> torch.Tensor:
    """A random crop of a random backdrop patch (uint8 M x 3 x S x S), resized to ``height`` x ``width``."""
    patch = bank[int(torch.randint(len(bank), (), generator=gen))].float() / 255.0
    side = patch.shape[-1]
    crop = max(8, int(side * _uniform(gen, 0.5, 1.0)))
    top = int(torch.randint(side - crop + 1, (), generator=gen))
    left = int(torch.randint(side - crop + 1, (), generator=gen))
    region = patch[:, top : top + crop, left : left + crop]
    if float(torch.rand((), generator=gen)) < 0.5:
        region = region.flip(-1)
    return F.interpolate(region[None], size=(height, width), mode="bilinear", align_corners=False)[0].clamp(0, 1)


def random_backdrop(gen: torch.Generator, height: int, width: int, bank: torch.Tensor | None = None) -> torch.Tensor:
    """One backdrop of a random family (a real photo's background with ``PHOTO_SHARE`` when ``bank`` is
    given), with random brightness and contrast."""
    if bank is not None and len(bank) and float(torch.rand((), generator=gen)) < PHOTO_SHARE:
        image = photo_patch(bank, gen, height, width)
    else:
        family = PROCEDURAL[int(torch.randint(len(PROCEDURAL), (), generator=gen))]
        image = family(gen, height, width)
    contrast, brightness = _uniform(gen, 0.6, 1.2), _uniform(gen, -0.15, 0.15)
    return ((image - 0.5) * contrast + 0.5 + brightness).clamp(0, 1)


# Studio sweep: where the wall meets the floor (share of the height) and how soft the bend is.
SWEEP_HORIZON = 0.7
SWEEP_BEND = 0.08


def _smoothstep(low: float, high: float, t: torch.Tensor) -> torch.Tensor:
    t = ((t - low) / (high - low)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def studio_sweep(colour: torch.Tensor, height: int, width: int, gen: torch.Generator) -> torch.Tensor:
    """A photo studio's seamless paper sweep in ``colour`` (3 floats in [0, 1]): a wall lit brightest behind
    the product, bending softly into a darker floor, with a light vignette. The dither of a quarter level
    keeps the gradients free of banding once stored as 8 bits; ``gen`` fixes it."""
    y = torch.linspace(0, 1, height)[:, None].expand(height, width)
    x = torch.linspace(-0.5, 0.5, width)[None, :].expand(height, width) * (width / max(height, 1))
    wall = 1.08 - 0.35 * torch.sqrt(x**2 + (y - 0.4) ** 2)
    floor = 0.86 + 0.1 * (y - SWEEP_HORIZON) / (1 - SWEEP_HORIZON) - 0.15 * x.abs()
    light = torch.lerp(wall, floor, _smoothstep(SWEEP_HORIZON - SWEEP_BEND, SWEEP_HORIZON + SWEEP_BEND, y))
    dither = (torch.rand(height, width, generator=gen) - 0.5) / (4 * 255)
    return (colour.float()[:, None, None] * light + dither).clamp(0, 1)
