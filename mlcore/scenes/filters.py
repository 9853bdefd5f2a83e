"""Gaussian blurs for the soft parts of a scene (shadows, depth of field): separable, and for wide
blurs done on a smaller copy, so a 2000 px canvas blurs in milliseconds, not seconds.

Every kernel is finite (3 sigma) and every step is a weighted sum, so a region far from anything
non-zero stays exactly 0: a shadow's tail ends, it does not leave a faint tint over the whole frame.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Direct separable convolution up to this sigma (kernel 25 taps); beyond it the image is blurred at
# a smaller scale, where the kernel is short again.
_DIRECT_SIGMA = 4.0
# Standard deviation, in units of the scale factor, that an antialiased bilinear down- then
# up-sampling adds by itself (two triangle filters of unit width: sqrt(2 * 1/6)).
_RESAMPLE_SIGMA = math.sqrt(2.0 / 6.0)


def _kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


def _direct(x: torch.Tensor, sigma_y: float, sigma_x: float, border: str) -> torch.Tensor:
    """Separable blur of N x C x H x W as a sum of shifted copies: on a CPU this is 5-10x faster than
    a depthwise ``conv2d`` with a 1-D kernel (measured 0.03-0.05 s against 0.24 s a pass at 1365 px)."""
    for sigma, dim in ((sigma_y, 2), (sigma_x, 3)):
        if sigma <= 0.05:
            continue
        kernel = _kernel(sigma).tolist()
        radius = (len(kernel) - 1) // 2
        padded = _pad(x, radius, dim, border)
        length = x.shape[dim]
        out = padded.narrow(dim, 0, length) * kernel[0]
        for offset in range(1, len(kernel)):
            out.add_(padded.narrow(dim, offset, length), alpha=kernel[offset])
        x = out
    return x


def _pad(x: torch.Tensor, radius: int, dim: int, border: str) -> torch.Tensor:
    # Built by hand: F.pad's replicate mode refuses padding wider than the image, and a backdrop row
    # blurred by more than its height is a real case at the top of a short banner.
    sizes = list(x.shape)
    sizes[dim] = radius
    if border == "zeros":
        before = after = x.new_zeros(sizes)
    else:
        before = x.narrow(dim, 0, 1).expand(sizes)
        after = x.narrow(dim, x.shape[dim] - 1, 1).expand(sizes)
    return torch.cat((before, x, after), dim)


def blur(x: torch.Tensor, sigma: float | tuple[float, float], *, border: str = "zeros") -> torch.Tensor:
    """Gaussian blur of ``x`` (H x W, C x H x W or N x C x H x W, float) with ``sigma`` pixels, or
    (sigma_y, sigma_x). ``border``: "zeros" (outside is 0: shadows) or "replicate" (edge pixels
    continue: backdrops, whose borders must not darken)."""
    if border not in ("zeros", "replicate"):
        raise ValueError(f"border must be 'zeros' or 'replicate', got {border!r}")
    sigma_y, sigma_x = (sigma, sigma) if isinstance(sigma, (int, float)) else sigma
    if sigma_y < 0 or sigma_x < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma!r}")
    shape = x.shape
    if x.dim() < 2 or x.dim() > 4:
        raise ValueError(f"blur expects H x W, C x H x W or N x C x H x W, got shape {tuple(shape)}")
    x4 = x.reshape((1,) * (4 - x.dim()) + tuple(shape))
    height, width = x4.shape[-2:]
    widest = max(sigma_y, sigma_x)
    if widest <= _DIRECT_SIGMA:
        return _direct(x4, sigma_y, sigma_x, border).reshape(shape)
    # Blur a copy `factor` times smaller along each wide axis, subtracting the blur that resampling
    # adds on its own, so the result is close to the asked Gaussian whatever the factor.
    def factor_for(s: float) -> int:
        return 1 if s <= _DIRECT_SIGMA else 2 ** max(0, math.floor(math.log2(s / (_DIRECT_SIGMA / 2))))

    factor_y, factor_x = factor_for(sigma_y), factor_for(sigma_x)
    small = (max(1, round(height / factor_y)), max(1, round(width / factor_x)))
    reduced = F.interpolate(x4, size=small, mode="bilinear", antialias=True, align_corners=False)

    def residual(s: float, factor: int) -> float:
        if factor == 1:
            return s
        return math.sqrt(max(s * s - (_RESAMPLE_SIGMA * factor) ** 2, 0.0)) / factor

    reduced = _direct(reduced, residual(sigma_y, factor_y), residual(sigma_x, factor_x), border)
    out = F.interpolate(reduced, size=(height, width), mode="bilinear", align_corners=False)
    return out.reshape(shape)


def level_weights(sigma_map: torch.Tensor, levels: list[float]) -> list[torch.Tensor]:
    """Hat-function weights, one per level, that blend copies blurred by ``levels`` (ascending,
    first usually 0) into an approximately ``sigma_map``-blurred result. The weights sum to 1."""
    t = sigma_map.clamp(levels[0], levels[-1])
    weights = []
    for i, s in enumerate(levels):
        w = torch.zeros_like(t)
        if i > 0:
            lo = levels[i - 1]
            w = torch.where((t >= lo) & (t <= s), (t - lo) / max(s - lo, 1e-9), w)
        else:
            w = torch.where(t <= s, torch.ones_like(t), w)
        if i + 1 < len(levels):
            hi = levels[i + 1]
            w = torch.where((t > s) & (t <= hi), (hi - t) / max(hi - s, 1e-9), w)
        else:
            w = torch.where(t >= s, torch.ones_like(t), w)
        weights.append(w)
    return weights


def _rows(weight: torch.Tensor, height: int) -> tuple[int, int] | None:
    """[first, last + 1) of the rows where ``weight`` (broadcasting to H x W) is above 0."""
    used = torch.nonzero((weight > 0).reshape(weight.shape[0], -1).any(dim=1)).flatten()
    if len(used) == 0:
        return None
    if weight.shape[0] == 1:
        return 0, height
    return int(used[0]), int(used[-1]) + 1


def varying_blur(
    x: torch.Tensor, sigma_map: torch.Tensor, max_sigma: float, *, steps: int = 4, border: str = "zeros"
) -> torch.Tensor:
    """``x`` (C x H x W) blurred by a sigma that varies over the image: ``sigma_map`` broadcasts to
    H x W (per pixel, or H x 1 per row). A blend of ``steps`` copies blurred by geometrically
    spaced sigmas up to ``max_sigma``, plus the sharp original, each weighted by a hat function of
    the local sigma (so each pixel mixes two neighbouring copies)."""
    if max_sigma <= 0.05:
        return x.clone()
    height = x.shape[-2]
    levels = [0.0] + [max_sigma / 2 ** (steps - 1 - i) for i in range(steps)]
    out = torch.zeros_like(x)
    for sigma, weight in zip(levels, level_weights(sigma_map, levels)):
        rows = _rows(weight, height)
        if rows is None:
            continue
        # Each copy is only blurred on the rows that use it, plus the blur's reach: at the top of a
        # depth-of-field backdrop only the widest copy is used, near the floor only the sharp one.
        reach = math.ceil(4.0 * sigma) + 4
        r0, r1 = max(0, rows[0] - reach), min(height, rows[1] + reach)
        slab = x[..., r0:r1, :]
        copy = slab if sigma == 0.0 else blur(slab, sigma, border=border)
        w = weight if weight.shape[0] == 1 else weight[rows[0] : rows[1]]
        out[..., rows[0] : rows[1], :] += copy[..., rows[0] - r0 : rows[1] - r0, :] * w
    return out
