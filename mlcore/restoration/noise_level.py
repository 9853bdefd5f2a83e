"""How noisy a photo is, without a clean copy to compare with (the denoiser's strength, auto's detection)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

# Immerkaer's (1996) Laplacian-difference kernel: its response to a smooth image is ~0, to white noise of
# standard deviation sigma it has mean absolute value sigma * 6 / sqrt(pi / 2).
_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
# Edges and texture answer the kernel too; only the smoother share of the photo (by gradient) is measured.
SMOOTH_SHARE = 0.5
CLIP_MARGIN = 12
MIN_USABLE = 0.05
# Choosing the smoother half also chooses the quieter noise draws: on the dataset's photos with added noise of
# sigma 15 and 25 the raw estimate was 0.66 of the truth (median, bench/enhance_detect.py's measurements).
BIAS = 1 / 0.66
ANALYSIS_SIDE = 512


def grey(image: Image.Image, side: int = ANALYSIS_SIDE) -> np.ndarray:
    """Luma (0-255 floats) of ``image``, cropped (never resized: resizing averages noise away) to ``side``."""
    g = np.asarray(image.convert("L"), dtype=np.float32)
    h, w = g.shape
    top, left = max((h - side) // 2, 0), max((w - side) // 2, 0)
    return g[top : top + side, left : left + side]


def _filter3(g: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    h, w = g.shape
    return sum(kernel[i, j] * g[i : h - 2 + i, j : w - 2 + j] for i in range(3) for j in range(3))


def noise_sigma(image: Image.Image) -> float:
    """Estimated standard deviation of white noise in ``image`` (0-255 units)."""
    g = grey(image)
    if min(g.shape) < 8:
        return 0.0
    response = np.abs(_filter3(g, _KERNEL))
    gy, gx = np.gradient(g[1:-1, 1:-1])
    gradient = np.hypot(gx, gy)
    # Noise is clipped away where the photo is near black or white (a white backdrop): not measured there.
    centre = g[1:-1, 1:-1]
    usable = (centre > CLIP_MARGIN) & (centre < 255 - CLIP_MARGIN)
    if usable.mean() < MIN_USABLE:
        usable = np.ones_like(usable)
    smooth = response[usable & (gradient <= np.quantile(gradient[usable], SMOOTH_SHARE))]
    return float(smooth.mean() * math.sqrt(math.pi / 2) / 6.0 * BIAS)
