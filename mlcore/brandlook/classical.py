"""Classical colour transfer to a look, the baselines of the benchmark. Both work per channel in CIELAB on the
full-resolution photo, with the photo's own statistics from ``look.statistics_of`` (like the model).

* ``reinhard``: Reinhard et al. 2001, "Color Transfer between Images": each channel is standardised with the
  photo's mean and std and given the look's (the paper uses l-alpha-beta; CIELAB is the common variant).
* ``histogram_match``: each channel's quantile function is replaced by the look's: a value at the photo's
  quantile level p goes to the look's value at p (piecewise linear between the LEVELS quantiles; beyond
  the outer ones values keep their offset, so highlights and shadows are shifted, not flattened).
Out-of-gamut results are clipped when converted back to sRGB.
"""

from __future__ import annotations

import torch
from PIL import Image

from ..cielab import lab_to_srgb, srgb_to_lab
from .images import map_colours
from .look import Look, look_tensors, statistics_of

# Only guards the division for a channel with no spread at all (a* of a pure grey photo); a nearly grey photo is
# still stretched by the textbook ratio of stds, which is where this baseline's colour blotches come from.
MIN_STD = 1e-3


def interpolate(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear f(x) through (xp, fp) (xp non-decreasing), extended beyond the ends with slope 1."""
    # Ties in xp (flat photo areas) would give 0/0: nudge them to strictly increasing.
    xp = xp + torch.arange(len(xp), dtype=xp.dtype) * 1e-6
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, len(xp) - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    inside = f0 + (f1 - f0) * (x - x0) / (x1 - x0)
    return torch.where(x < xp[0], fp[0] + x - xp[0], torch.where(x > xp[-1], fp[-1] + x - xp[-1], inside))


def reinhard(image: Image.Image, look: Look) -> Image.Image:
    """``image`` with each CIELAB channel's mean and std set to the look's."""
    target = look_tensors(look)
    own = statistics_of(image)
    scale = (target["std"] / own["std"].clamp_min(MIN_STD)).float()
    mean_in, mean_out = own["mean"].float(), target["mean"].float()

    def mapping(rgb: torch.Tensor) -> torch.Tensor:
        lab = srgb_to_lab(rgb)
        return lab_to_srgb((lab - mean_in[:, None, None]) * scale[:, None, None] + mean_out[:, None, None])

    return map_colours(image, mapping)


def histogram_match(image: Image.Image, look: Look) -> Image.Image:
    """``image`` with each CIELAB channel's quantiles moved onto the look's."""
    target = look_tensors(look)["quantiles"].float()
    own = statistics_of(image)["quantiles"].float()

    def mapping(rgb: torch.Tensor) -> torch.Tensor:
        lab = srgb_to_lab(rgb)
        channels = [interpolate(lab[c], own[c], target[c]) for c in range(3)]
        return lab_to_srgb(torch.stack(channels))

    return map_colours(image, mapping)
