"""Bring a low-resolution mask up to the photo's resolution along the photo's own edges: the guided
filter (He, Sun and Tang, "Guided Image Filtering", 2010/2013).

The network sees a photo squeezed to ~128 px; scaled straight back to 1000 px its mask edge is a
smooth curve several pixels off the garment's edge. The guided filter models the output locally as
a linear function of the photo's brightness (q = a I + b in every window), fitted by least squares to
the upsampled mask, so the edge snaps to where the brightness changes. Box means are computed with
cumulative sums: the cost is a few passes over the pixels, whatever the radius. The linear
coefficients vary slowly, so they are fitted on a subsampled copy and interpolated back (the "fast
guided filter", He and Sun 2015): the last step, q = A I + B, is still at full resolution.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_mean(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over the (2 radius + 1)^2 window around each pixel of H x W ``x``, windows clipped at the border."""
    height, width = x.shape

    def along(values: torch.Tensor, dim: int, length: int) -> torch.Tensor:
        padded = torch.cat((torch.zeros_like(values.narrow(dim, 0, 1)), values.double().cumsum(dim)), dim)
        index = torch.arange(length)
        hi = (index + radius + 1).clamp_max(length)
        lo = (index - radius).clamp_min(0)
        return padded.index_select(dim, hi) - padded.index_select(dim, lo)

    # float64 cumulative sums: over a megapixel, float32 loses the low digits that the differences need.
    sums = along(along(x, 0, height), 1, width)
    rows = (torch.arange(height) + radius + 1).clamp_max(height) - (torch.arange(height) - radius).clamp_min(0)
    cols = (torch.arange(width) + radius + 1).clamp_max(width) - (torch.arange(width) - radius).clamp_min(0)
    return (sums / (rows[:, None] * cols[None, :]).double()).to(x.dtype)


def guided_filter(guide: torch.Tensor, source: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """The guided filter of H x W ``source`` with the H x W grey ``guide`` (values in [0, 1]).

    ``eps`` sets how strong an edge must be to be followed: windows with brightness variance well
    below it are smoothed, those well above it copy the guide's edge."""
    mean_i = box_mean(guide, radius)
    mean_p = box_mean(source, radius)
    var_i = box_mean(guide * guide, radius) - mean_i * mean_i
    cov_ip = box_mean(guide * source, radius) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return box_mean(a, radius) * guide + box_mean(b, radius)


def luminance(rgb: torch.Tensor) -> torch.Tensor:
    """Rec. 601 luma of uint8 3 x H x W as float H x W in [0, 1]."""
    weights = torch.tensor([0.299, 0.587, 0.114])
    return torch.einsum("c,chw->hw", weights, rgb.float() / 255.0)


def fast_guided_filter(
    guide: torch.Tensor, source: torch.Tensor, radius: int, eps: float, subsample: int
) -> torch.Tensor:
    """``guided_filter`` with its coefficients computed ``subsample`` times smaller (``radius`` in
    full-resolution pixels), applied to the full-resolution ``guide``."""
    if subsample <= 1:
        return guided_filter(guide, source, radius, eps)
    height, width = guide.shape
    small = (max(1, round(height / subsample)), max(1, round(width / subsample)))
    stack = torch.stack((guide, source))[None]
    guide_small, source_small = F.interpolate(
        stack, size=small, mode="bilinear", antialias=True, align_corners=False
    )[0]
    r = max(1, round(radius / subsample))
    mean_i = box_mean(guide_small, r)
    mean_p = box_mean(source_small, r)
    var_i = box_mean(guide_small * guide_small, r) - mean_i * mean_i
    cov_ip = box_mean(guide_small * source_small, r) - mean_i * mean_p
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    coefficients = torch.stack((box_mean(a, r), box_mean(b, r)))[None]
    a_full, b_full = F.interpolate(coefficients, size=(height, width), mode="bilinear", align_corners=False)[0]
    return a_full * guide + b_full
