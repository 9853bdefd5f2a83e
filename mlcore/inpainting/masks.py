"""Random hole masks for training and for the benchmark: free-form brush strokes and rectangles.

A shop marks damage with a brush (scratches, stains, a price tag) or a rectangle (a watermark, a label), so
training masks are both. ``size`` picks the coverage range: "small" (2-5 % of the area: specks, scratches)
or "large" (15-30 %: a sticker, a logo, a missing corner). Every draw comes from the caller's
``torch.Generator``, so a mask is reproducible from its seed, and its coverage is always inside the range.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

MASK_SIZES: dict[str, tuple[float, float]] = {"small": (0.02, 0.05), "large": (0.15, 0.30)}
MAX_SHAPES = 200


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _rectangle(draw: ImageDraw.ImageDraw, generator: torch.Generator, height: int, width: int, area: float) -> None:
    aspect = math.exp(_uniform(generator, math.log(1 / 3), math.log(3)))
    w = max(1, min(width, round(math.sqrt(area * aspect))))
    h = max(1, min(height, round(area / w)))
    left = int(torch.randint(width - w + 1, (), generator=generator))
    top = int(torch.randint(height - h + 1, (), generator=generator))
    draw.rectangle((left, top, left + w - 1, top + h - 1), fill=1)


def _stroke(draw: ImageDraw.ImageDraw, generator: torch.Generator, height: int, width: int, area: float) -> None:
    """A brush stroke: a polyline of 1-5 segments with round joints, about ``area`` pixels."""
    side = min(height, width)
    # Brush width: 2-8 % of the shorter side, but thin enough that the stroke is longer than it is wide.
    brush = max(2, round(min(_uniform(generator, 0.02, 0.08) * side, math.sqrt(area / 2))))
    length = max(0.0, area / brush - brush)  # the round caps add about brush^2 (pi/4 each, two ends)
    segments = int(torch.randint(1, 6, (), generator=generator))
    x, y = _uniform(generator, 0, width - 1), _uniform(generator, 0, height - 1)
    angle = _uniform(generator, 0, 2 * math.pi)
    points = [(x, y)]
    for _ in range(segments):
        angle += _uniform(generator, -math.pi / 2, math.pi / 2)
        step = length / segments
        x = min(max(x + step * math.cos(angle), 0), width - 1)
        y = min(max(y + step * math.sin(angle), 0), height - 1)
        points.append((x, y))
    draw.line(points, fill=1, width=brush, joint="curve")
    r = brush / 2
    for px, py in (points[0], points[-1]):
        draw.ellipse((px - r, py - r, px + r, py + r), fill=1)


def random_mask(generator: torch.Generator, height: int, width: int, size: str = "small") -> torch.Tensor:
    """A bool H x W mask (True = hole) covering a share of the area inside ``MASK_SIZES[size]``.

    Draws a target coverage in the range, then adds strokes and rectangles (each as likely) sized to the
    coverage still missing; a shape that would overshoot the range is undone and a smaller one drawn. If
    ``MAX_SHAPES`` shapes do not get there (tiny images), a final rectangle tops the coverage up.
    """
    if size not in MASK_SIZES:
        raise ValueError(f"size must be one of {sorted(MASK_SIZES)}, got {size!r}")
    if height < 8 or width < 8:
        raise ValueError(f"masks need images of at least 8 x 8, got {width} x {height}")
    low, high = MASK_SIZES[size]
    total = height * width
    target = _uniform(generator, low, high) * total
    canvas = Image.new("1", (width, height), 0)
    covered = 0
    for _ in range(MAX_SHAPES):
        if covered >= low * total:
            break
        trial = canvas.copy()
        draw = ImageDraw.Draw(trial)
        # Each shape fills 40-100 % of what is missing, so a mask is a few shapes, not one blob.
        area = max(4.0, (target - covered) * _uniform(generator, 0.4, 1.0))
        shape = _stroke if float(torch.rand((), generator=generator)) < 0.5 else _rectangle
        shape(draw, generator, height, width, area)
        count = int(np.count_nonzero(np.asarray(trial)))
        if count <= high * total:
            canvas, covered = trial, count
    mask = torch.from_numpy(np.array(canvas, dtype=bool))
    if covered < low * total:
        # Top up along the rows of a random start: exact, and only reached when shapes keep overshooting.
        free = (~mask).flatten().nonzero().flatten()
        need = math.ceil(low * total) - covered
        start = int(torch.randint(len(free) - need + 1, (), generator=generator))
        mask.view(-1)[free[start : start + need]] = True
    return mask
