"""Full-reference image quality: PSNR and SSIM, on float images N x C x H x W with values in [0, 1].

SSIM follows Wang et al. (2004): an 11 x 11 gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, data
range 1, only where the window fits inside the image ("valid"), computed per channel (RGB here) and averaged
over channels and positions. It is differentiable, so the training loss can use it too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .degrade import gaussian_kernel

SSIM_SIGMA = 1.5
SSIM_SIZE = 11
K1, K2 = 0.01, 0.03


def psnr(restored: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB (N,): 10 log10(1 / MSE), the MSE over all channels and pixels. Identical
    images give inf."""
    mse = (restored.double() - target.double()).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


def _window(channels: int, like: torch.Tensor) -> torch.Tensor:
    # Built in float64: in float32 the weights sum to 1 +- 1e-7, enough to move SSIM of flat images by 4e-6.
    g = gaussian_kernel(SSIM_SIGMA, torch.float64)
    radius = (len(g) - 1) // 2
    g = g[radius - SSIM_SIZE // 2 : radius + SSIM_SIZE // 2 + 1]
    window = g[:, None] * g[None, :]
    return (window / window.sum()).to(like).expand(channels, 1, SSIM_SIZE, SSIM_SIZE)


def ssim_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Local SSIM, N x C x (H - 10) x (W - 10)."""
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"expected two N x C x H x W images of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < SSIM_SIZE:
        raise ValueError(f"SSIM needs images of at least {SSIM_SIZE} x {SSIM_SIZE}, got {tuple(x.shape[-2:])}")
    # float32 at least; float64 stays (E[x^2] - E[x]^2 loses digits in float32).
    dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
    x, y = x.to(dtype), y.to(dtype)
    channels = x.shape[1]
    window = _window(channels, x)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, window, groups=channels)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x.pow(2)
    var_y = blur(y * y) - mu_y.pow(2)
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = K1**2, K2**2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x.pow(2) + mu_y.pow(2) + c1) * (var_x + var_y + c2))


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (N,): the mean of ``ssim_map`` over channels and positions."""
    return ssim_map(x, y).flatten(1).mean(dim=1)
