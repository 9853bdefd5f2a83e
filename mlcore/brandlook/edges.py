"""Structural similarity of the luminance edges: does a colour mapping keep a photo's shape and details?

    edge_ssim(x, y) = mean SSIM(E(x), E(y)),   E = |Sobel(L*)| / 8

E is the gradient magnitude of CIELAB lightness in L* units per pixel (a Sobel kernel sums 8 x the slope of a
ramp, hence / 8), at full resolution. SSIM is Wang et al. 2004 with their defaults: an 11 x 11 Gaussian window
of sigma 1.5, K1 = 0.01, K2 = 0.03, averaged over the window positions that lie inside the image ("valid"),
with the dynamic range R = 100 (the range of L*, and the largest slope E can have between neighbours).
1 means the same edges with the same strengths; a mapping that halves every edge's strength scores about 0.64
(the mean and the contrast term 2 * 0.5 / (1 + 0.25) = 0.8 each, structure 1), one that loses the edges near 0.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from ..cielab import srgb_to_lab
from .images import rgb_tensor
from ..background.images import prepare

WINDOW = 11
SIGMA = 1.5
K1, K2 = 0.01, 0.03
DATA_RANGE = 100.0


def _gaussian_window() -> torch.Tensor:
    x = torch.arange(WINDOW, dtype=torch.float64) - (WINDOW - 1) / 2
    g = torch.exp(-(x**2) / (2 * SIGMA**2))
    return g / g.sum()


def sobel_magnitude(lightness: torch.Tensor) -> torch.Tensor:
    """|gradient| of H x W values (replicated borders) via Sobel / 8, same size."""
    kx = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], dtype=lightness.dtype) / 8.0
    kernels = torch.stack((kx, kx.T))[:, None]
    padded = F.pad(lightness[None, None], (1, 1, 1, 1), mode="replicate")
    g = F.conv2d(padded, kernels)[0]
    return torch.sqrt(g[0] ** 2 + g[1] ** 2)


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = DATA_RANGE) -> float:
    """Mean SSIM of two H x W maps (H, W >= WINDOW), Gaussian window, valid positions only."""
    if x.shape != y.shape or x.dim() != 2:
        raise ValueError(f"ssim needs two H x W maps of one size, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape) < WINDOW:
        raise ValueError(f"ssim needs maps of at least {WINDOW} x {WINDOW}, got {tuple(x.shape)}")
    g = _gaussian_window().to(x.dtype)
    stack = torch.stack((x, y, x * x, y * y, x * y))[:, None]
    blurred = F.conv2d(F.conv2d(stack, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))[:, 0]
    mu_x, mu_y, xx, yy, xy = blurred
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    value = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(value.mean())


def edge_map(image: Image.Image) -> torch.Tensor:
    """E of a photo (its RGB, EXIF-upright): H x W float64."""
    rgb, _ = prepare(image)
    return sobel_magnitude(srgb_to_lab(rgb_tensor(rgb).double())[0])


def edge_ssim(original: Image.Image, result: Image.Image) -> float:
    """SSIM of the luminance edge maps of two photos of the same size (see the module docstring)."""
    if original.size != result.size:
        raise ValueError(f"images differ in size: {original.size} and {result.size}")
    return ssim(edge_map(original), edge_map(result))
