"""Fixed, analytic colour tables: the part of the LUT bank that needs no learning.

Each table is a displacement field (output minus input, ``3 x M x M x M`` like ``lut``) of one elementary edit;
a photo's table is the identity plus a weighted sum of these and of the learned residual tables. With them the
network only has to regress coefficients (how much to lift black in red, how much to warm the highlights),
a well-conditioned problem that trains in minutes on two cores, where tables learned from scratch need far
longer to become a useful basis. They span, to first order, every step of ``grading`` and the usual grades:

* per-channel tone curves: a hat function of the channel's own value at each of ``curve_knots`` knots
  (white balance, exposure, black/white points, contrast, gamma, per-channel gammas);
* the six off-diagonal terms of a colour matrix (with the curves' linear part: saturation, hue rotation,
  channel mixing);
* per-channel offsets as a hat function of luma at ``luma_knots`` knots (a cast that differs between shadows
  and highlights: split toning);
* chroma scaling as a hat function of luma (x - Y) * hat(Y) (saturation that differs by lightness).
"""

from __future__ import annotations

import torch

from .lut import identity_lut

# Rec. 601 luma on sRGB values, as ``grading``.
LUMA = (0.299, 0.587, 0.114)


def hats(values: torch.Tensor, knots: int) -> torch.Tensor:
    """Piecewise-linear hat functions at ``knots`` evenly spaced knots on [0, 1]: knots x values.shape.
    They sum to 1 everywhere, so a constant is in their span."""
    centres = torch.linspace(0.0, 1.0, knots, dtype=values.dtype).view(-1, *([1] * values.dim()))
    return (1.0 - (values[None] - centres).abs() * (knots - 1)).clamp_min(0.0)


def analytic_basis(size: int, curve_knots: int, luma_knots: int) -> torch.Tensor:
    """The fixed displacement tables, ``K x 3 x size x size x size`` with K = 3 curve_knots + 6 + 4 luma_knots."""
    ident = identity_lut(size, torch.float64)
    zero = torch.zeros_like(ident)
    tables = []
    for channel in range(3):
        for bump in hats(ident[channel], curve_knots):
            table = zero.clone()
            table[channel] = bump
            tables.append(table)
    for out in range(3):
        for source in range(3):
            if out != source:
                table = zero.clone()
                table[out] = ident[source] - 0.5
                tables.append(table)
    luma = sum(w * ident[c] for c, w in enumerate(LUMA))
    luma_hats = hats(luma, luma_knots)
    for channel in range(3):
        for bump in luma_hats:
            table = zero.clone()
            table[channel] = bump
            tables.append(table)
    for bump in luma_hats:
        tables.append((ident - luma) * bump)
    return torch.stack(tables).float()


def basis_count(curve_knots: int, luma_knots: int) -> int:
    """How many tables ``analytic_basis`` makes."""
    return 3 * curve_knots + 6 + 4 * luma_knots
