"""The classical baselines of the Enhance benchmark, with the parameter grids they are tuned over.

Each baseline maps a degraded photo (PIL RGB, at the size the shop has it) and one parameter setting to a
restored photo of the clean photo's size. ``tune`` picks, per degradation, the setting with the best mean
PSNR on a tuning set (the dataset's validation split, never the test photos), so every baseline is measured
at its best fixed setting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from mlcore.restoration import classical as tools

Params = dict[str, Any]


@dataclass(frozen=True)
class Baseline:
    name: str
    apply: Callable[[Image.Image, Params, int], Image.Image]  # (degraded photo, params, upscale factor)
    grid: Callable[[str], list[Params]]  # settings to try for a degradation (by name)


def _nlm(image: Image.Image, params: Params, scale: int) -> Image.Image:
    return tools.nlm(image, params["h"], params["hColor"])


def _nlm_grid(degradation: str) -> list[Params]:
    # Noise: h around the noise level (OpenCV's h is in 0-255 units of the L channel); JPEG: gentle settings.
    if degradation.startswith("noise"):
        sigma = float(degradation.removeprefix("noise"))
        strengths = [round(sigma * m, 1) for m in (0.3, 0.45, 0.6, 0.8, 1.0)]
    else:
        strengths = [2.0, 3.0, 4.5, 6.0, 8.0]
    return [{"h": h, "hColor": round(h * c, 1)} for h in strengths for c in (0.5, 1.0)]


def _unsharp(image: Image.Image, params: Params, scale: int) -> Image.Image:
    return image.filter(ImageFilter.UnsharpMask(params["radius"], params["percent"], params["threshold"]))


def _unsharp_grid(_degradation: str) -> list[Params]:
    return [
        {"radius": r, "percent": p, "threshold": t}
        for r in (0.5, 1.0, 1.5, 2.0, 3.0, 4.0) for p in (50, 100, 150, 200, 300, 400) for t in (0, 2)
    ]


def _autocontrast(image: Image.Image, params: Params, scale: int) -> Image.Image:
    return ImageOps.autocontrast(image, cutoff=params["cutoff"], preserve_tone=params["preserve_tone"])


def _autocontrast_grid(_degradation: str) -> list[Params]:
    return [{"cutoff": c, "preserve_tone": p} for c in (0, 0.1, 0.5, 1, 2, 5) for p in (False, True)]


def _grey_edge(image: Image.Image, params: Params, scale: int) -> Image.Image:
    return tools.grey_edge(image)


def _resize(method: Image.Resampling) -> Callable[[Image.Image, Params, int], Image.Image]:
    def apply(image: Image.Image, params: Params, scale: int) -> Image.Image:
        return image.resize((image.width * scale, image.height * scale), method)

    return apply


def _no_params(_degradation: str) -> list[Params]:
    return [{}]


NLM = Baseline("OpenCV non-local means", _nlm, _nlm_grid)
UNSHARP = Baseline("Pillow unsharp mask", _unsharp, _unsharp_grid)
AUTOCONTRAST = Baseline("Pillow autocontrast", _autocontrast, _autocontrast_grid)
GREY_EDGE = Baseline("Grey edge", _grey_edge, _no_params)
BICUBIC = Baseline("Pillow bicubic", _resize(Image.Resampling.BICUBIC), _no_params)
LANCZOS = Baseline("Pillow Lanczos", _resize(Image.Resampling.LANCZOS), _no_params)

# Which baselines apply to which benchmark degradation (mlcore.restoration.degrade.NAMED).
FOR_DEGRADATION: dict[str, tuple[Baseline, ...]] = {
    "noise15": (NLM,),
    "noise25": (NLM,),
    "blur": (UNSHARP,),
    "jpeg20": (NLM,),
    "downscale2": (BICUBIC, LANCZOS),
    "downscale4": (BICUBIC, LANCZOS),
    "underexposed": (AUTOCONTRAST,),
    "overexposed": (AUTOCONTRAST,),
    "colourcast": (AUTOCONTRAST, GREY_EDGE),
}


def tune(
    baseline: Baseline,
    degradation: str,
    degraded: Sequence[Image.Image],
    clean: Sequence[Image.Image],
    scale: int,
    score: Callable[[Image.Image, Image.Image], float],
) -> tuple[Params, float]:
    """(the grid setting with the best mean ``score`` (PSNR) over the pairs, that mean)."""
    best: tuple[Params, float] | None = None
    for params in baseline.grid(degradation):
        mean = float(np.mean([score(baseline.apply(d, params, scale), c) for d, c in zip(degraded, clean, strict=True)]))
        if best is None or mean > best[1]:
            best = (params, mean)
    assert best is not None
    return best
