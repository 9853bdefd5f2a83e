"""Classical harmonisation, the baselines of the benchmark: the product's colour statistics moved onto the
backdrop's, per CIELAB channel.

* ``reinhard``: Reinhard et al. 2001, "Color Transfer between Images": each channel of the product is
  standardised with its mean and std and given the backdrop's (CIELAB as the common variant of the paper's
  l-alpha-beta).
* ``histogram_match``: each channel's quantile function of the product is replaced by the backdrop's
  (piecewise linear between ``LEVELS`` quantiles, slope 1 beyond the outer ones).

Both take the call signature of ``Harmoniser``: (product 3 x H x W, alpha H x W, backdrop 3 x H x W), floats in
[0, 1], and return the new product; only pixels with alpha > 0 change. The product's statistics are weighted
by the alpha, the backdrop's by 1 - alpha: what the composite shows of it (the part the product covers is not
part of the scene one sees, and in the benchmark it is the original product itself). ``strength`` in [0, 1]
blends in CIELAB between the product as it was (0) and the full transfer (1, the textbook method).

What these cannot know: a red dress on a white sheet is not "too red". Moving the product's statistics onto
the backdrop's changes the product's own colours, which is why the model exists; they are the reference
points the model is measured against.
"""

from __future__ import annotations

import torch

from ..brandlook.classical import interpolate
from ..cielab import lab_to_srgb, srgb_to_lab
from .transform import check_inputs

# Quantile levels for histogram matching: 1% steps.
LEVELS = 101
# Only guards the division for a channel with no spread at all (a* of a grey product).
MIN_STD = 1e-3


def _weighted_stats(lab: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    total = weight.sum().clamp_min(1e-6)
    mean = (lab * weight).sum(dim=(1, 2)) / total
    variance = ((lab - mean[:, None, None]).pow(2) * weight).sum(dim=(1, 2)) / total
    return mean, variance.sqrt()


def _backdrop_weight(alpha: torch.Tensor) -> torch.Tensor:
    """1 - alpha, or every pixel when the product covers the whole image (nothing of the backdrop shows)."""
    weight = 1.0 - alpha
    return weight if float(weight.sum()) > 0 else torch.ones_like(alpha)


def _finish(product: torch.Tensor, alpha: torch.Tensor, lab: torch.Tensor, new_lab: torch.Tensor, strength: float) -> torch.Tensor:
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    new = lab_to_srgb(lab + strength * (new_lab - lab))
    return torch.where(alpha[None] > 0, new, product)


def reinhard(product_rgb: torch.Tensor, alpha: torch.Tensor, backdrop_rgb: torch.Tensor, *, strength: float = 1.0) -> torch.Tensor:
    """The product with its CIELAB mean and std per channel set to the backdrop's."""
    product, alpha, backdrop = check_inputs(product_rgb, alpha, backdrop_rgb)
    lab = srgb_to_lab(product)
    mean_p, std_p = _weighted_stats(lab, alpha)
    mean_b, std_b = _weighted_stats(srgb_to_lab(backdrop), _backdrop_weight(alpha))
    scale = std_b / std_p.clamp_min(MIN_STD)
    new_lab = (lab - mean_p[:, None, None]) * scale[:, None, None] + mean_b[:, None, None]
    return _finish(product, alpha, lab, new_lab, strength)


def quantiles(values: torch.Tensor, levels: int = LEVELS) -> torch.Tensor:
    """``levels`` evenly spaced quantiles (nearest rank) of each row of C x P ``values`` -> C x levels."""
    ordered = values.sort(dim=1).values
    index = torch.linspace(0, values.shape[1] - 1, levels).round().long()
    return ordered[:, index]


def histogram_match(product_rgb: torch.Tensor, alpha: torch.Tensor, backdrop_rgb: torch.Tensor, *, strength: float = 1.0) -> torch.Tensor:
    """The product with each CIELAB channel's quantiles moved onto the backdrop's. The product's pixels are
    those with alpha > 0.5 (all with alpha > 0 if none is), the backdrop's those with alpha < 0.5 (all if none)."""
    product, alpha, backdrop = check_inputs(product_rgb, alpha, backdrop_rgb)
    if not bool((alpha > 0).any()):
        return product.clone()
    lab = srgb_to_lab(product)
    solid = alpha > 0.5 if bool((alpha > 0.5).any()) else alpha > 0
    behind = alpha < 0.5 if bool((alpha < 0.5).any()) else torch.ones_like(solid)
    own = quantiles(lab[:, solid])
    target = quantiles(srgb_to_lab(backdrop)[:, behind])
    new_lab = torch.stack([interpolate(lab[c], own[c], target[c]) for c in range(3)])
    return _finish(product, alpha, lab, new_lab, strength)
