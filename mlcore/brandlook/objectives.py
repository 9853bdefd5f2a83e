"""The brand-look training objective as pure functions of tensors.

    loss = |out - target|_1 (mean over pixels and channels, sRGB in [0, 1])
         + smooth_weight * curvature(LUT) + monotone_weight * decrease(LUT) [+ stats_weight * W1(out, look)]

Why the regularisers:
* curvature: a catalogue fills a thin part of the colour cube, so most table nodes never see a training pixel
  and would keep whatever noise the shared residuals put there; a colour the shop's photos never had would
  then map erratically at inference. Penalising squared second differences along each axis fills unseen
  nodes with the smooth (affine) continuation of the seen ones and prevents bumps that show as banding in
  smooth gradients (backdrop sweeps). Second, not first, differences: white balance, exposure in the table's
  domain, saturation and hue rotation are (near) affine in RGB and cost nothing, so the penalty does not pull
  grades towards "no change".
* decrease: an output channel that falls while its own input channel rises inverts local contrast in that
  channel, which turns edges into false contours or makes them vanish (solarisation); a grade never does it.
  Penalising the squared negative parts of the differences along the table's own axis keeps every channel's
  curve non-decreasing, which is what keeps the luminance edges (the benchmark's edge SSIM).
Both are computed on each photo's mixed table (the one actually applied), not on the basis tables.

The stats term is the benchmark's own distance (W1 of the L*, a*, b* marginals to the target look, / 100). The
reconstruction alone is ambiguous when the look comes from other products (their colours are not this
photo's) and its best answer is a cautious, shrunk grade; the stats term asks for the look to be reached,
within what one smooth monotone table per photo can do (so never at the cost of edges).
"""

from __future__ import annotations

import torch

from .distance import quantile_distance
from .look import VECTOR_SCALE


def reconstruction(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute sRGB error: robust to the few clipped pixels no table can reproduce."""
    return (out - target).abs().mean()


def lut_curvature(luts: torch.Tensor) -> torch.Tensor:
    """Mean squared second difference of N x 3 x M x M x M tables along the three input axes, in units of the
    node spacing (so it does not grow with M)."""
    m = luts.shape[-1]
    total = luts.new_zeros(())
    for dim in (2, 3, 4):
        second = luts.diff(n=2, dim=dim) * (m - 1) ** 2
        total = total + second.pow(2).mean()
    # Scaled so that a visible wiggle (second difference 1 per node) costs about as much as a 1% colour error.
    return total / 3.0 * 1e-4


def lut_decrease(luts: torch.Tensor) -> torch.Tensor:
    """Mean squared negative slope of each output channel along its own input axis (R along r, ...), in units
    of the node spacing; 0 for every table whose channel curves are all non-decreasing."""
    m = luts.shape[-1]
    total = luts.new_zeros(())
    # lut[:, c, b, g, r]: red varies along dim 4, green along 3, blue along 2.
    for channel, dim in ((0, 4), (1, 3), (2, 2)):
        slope = luts[:, channel].diff(dim=dim - 1) * (m - 1)
        total = total + torch.relu(-slope).pow(2).mean()
    return total / 3.0


def stats_term(out_quantiles: torch.Tensor, look_quantiles: torch.Tensor) -> torch.Tensor:
    """The benchmark's colour-statistics distance (``distance.quantile_distance``), batch mean, / 100."""
    return quantile_distance(out_quantiles, look_quantiles).mean() / VECTOR_SCALE


def brand_look_terms(
    out: torch.Tensor,
    target: torch.Tensor,
    luts: torch.Tensor,
    *,
    smooth_weight: float,
    monotone_weight: float,
    stats_weight: float = 0.0,
    out_quantiles: torch.Tensor | None = None,
    look_quantiles: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """{"loss", "recon", "smooth", "monotone"[, "stats"]}; "stats" needs both quantile tensors."""
    terms = {
        "recon": reconstruction(out, target),
        "smooth": lut_curvature(luts),
        "monotone": lut_decrease(luts),
    }
    loss = terms["recon"] + smooth_weight * terms["smooth"] + monotone_weight * terms["monotone"]
    if stats_weight > 0:
        if out_quantiles is None or look_quantiles is None:
            raise ValueError("stats_weight > 0 needs out_quantiles and look_quantiles")
        terms["stats"] = stats_term(out_quantiles, look_quantiles)
        loss = loss + stats_weight * terms["stats"]
    return {"loss": loss, **terms}
