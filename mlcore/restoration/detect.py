"""Which Enhance tasks a photo needs ("auto"): one no-reference measurement per task against a threshold.

The thresholds were set on the dataset's train split (clean photos against the benchmark's degraded copies,
``bench/enhance_detect.py --calibrate``: the best balanced accuracy among thresholds that flag at most 5% of
the clean photos) and their accuracy is measured on the test split (``bench/results/*-enhance-detect.md``). A photo with no measurement over its threshold needs nothing.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from .classical import edge_gains
from .noise_level import grey, noise_sigma
from .tasks import ORDER

# Thresholds (see the module docstring): each measurement's value above which the task is needed.
THRESHOLDS = {
    "denoise": 13.9,  # estimated noise sigma, 0-255 units
    "jpeg": 1.28,  # blockiness: mean step across the 8-pixel JPEG grid over the mean step elsewhere
    "deblur": 0.81,  # softness: gradient left after a small blur over the gradient before
    "underexposed": 0.39,  # 1 - the 99th percentile of luma (0-1)
    "overexposed": 0.01,  # share of pixels whose luma is clipped white
    "colour": 0.13,  # |log| of the largest grey-edge gain (``edge_cast``)
}
CLIPPED = 0.995
BLOCK = 8


def blockiness(image: Image.Image) -> float:
    """The mean step between neighbouring pixels across the 8-pixel grid JPEG compresses in, over the mean step
    elsewhere: ~1 for an image without block edges."""
    g = grey(image)
    h, w = g.shape
    if min(h, w) < 4 * BLOCK:
        return 1.0
    ratios = []
    for steps in (np.abs(np.diff(g, axis=1)), np.abs(np.diff(g, axis=0)).T):
        on_grid = (np.arange(steps.shape[1]) % BLOCK) == BLOCK - 1
        ratios.append((steps[:, on_grid].mean() + 0.5) / (steps[:, ~on_grid].mean() + 0.5))
    return float(np.mean(ratios))


def softness(image: Image.Image) -> float:
    """How little a small gaussian blur takes away: the mean gradient after it over the mean gradient before
    (near 1 for a photo that is blurred already)."""
    g = grey(image)

    def gradient(a: np.ndarray) -> float:
        return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())

    blurred = np.asarray(Image.fromarray(g.round().astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32)
    return gradient(blurred) / max(gradient(g), 1e-6)


def _luma(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L").reduce(max(1, max(image.size) // 256)), dtype=np.float32) / 255.0


def edge_cast(image: Image.Image) -> float:
    """How far the photo's edges are from grey: the largest |log| of the red or blue mean gradient over the green
    (the grey-edge hypothesis, van de Weijer et al. 2007: edges average to grey under neutral light; garments'
    own colours cancel far better over edges than over pixels)."""
    return float(np.abs(np.log(edge_gains(image))).max())


def measurements(image: Image.Image) -> dict[str, float]:
    """Every task's measurement of ``image`` (RGB)."""
    luma = _luma(image)
    return {
        "denoise": noise_sigma(image),
        "jpeg": blockiness(image),
        "deblur": softness(image),
        "underexposed": 1.0 - float(np.quantile(luma, 0.99)),
        "overexposed": float((luma >= CLIPPED).mean()),
        "colour": edge_cast(image),
    }


def needed(image: Image.Image, thresholds: dict[str, float] = THRESHOLDS) -> tuple[list[str], dict[str, float]]:
    """(the tasks ``image`` needs, in ``tasks.ORDER``; every measurement)."""

    values = measurements(image)
    over = {name for name, value in values.items() if value > thresholds[name]}
    tasks = {"exposure" if name in ("underexposed", "overexposed") else name for name in over}
    return [task for task in ORDER if task in tasks], {k: round(v, 4) for k, v in values.items()}
