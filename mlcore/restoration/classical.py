"""The classical tools each Enhance task is measured against, and runs instead of the trained model wherever
the model did not beat them on the shop's held-out photos.

Each tool maps an RGB PIL photo to a restored RGB photo (``scale`` times larger for the enlargements). The
settings are the best fixed ones the Enhance benchmark found on the dataset's validation split
(``bench/classical.py`` tunes them over grids; ``bench/results/*-enhance.md`` lists them); the denoiser
adapts its strength to the noise it estimates in the photo, as the tuned strength followed the noise level.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter, ImageOps

from .noise_level import noise_sigma

# Non-local means: strength h (0-255 units of CIELAB lightness) per unit of noise sigma, as tuned (9 for
# sigma 15, 15 for sigma 25), bounded so that a clean photo is barely touched and a very noisy one not smeared.
NLM_H_PER_SIGMA = 0.6
NLM_H_RANGE = (3.0, 20.0)
# JPEG clean-up: the gentle setting the benchmark tuned for quality 20.
JPEG_NLM_H = 3.0
UNSHARP = {"radius": 1.5, "percent": 200, "threshold": 0}
# Exposure: stretch the luminance to the full range, keeping the hue; a photo with clipped highlights (over this
# share of white pixels) leaves out its darkest and brightest EXPOSURE_CUTOFF_CLIPPED percent, as tuned on
# overexposed photos (cutoff 0 was best on underexposed ones).
CLIPPED_SHARE = 0.01
EXPOSURE_CUTOFF_CLIPPED = 2
# White patch: the brightest pixels (by luma) are taken to be white, within these gains (grey edge's too).
WHITE_PATCH_SHARE = 0.02
WHITE_PATCH_GAINS = (0.6, 1.6)


@dataclass(frozen=True)
class Tool:
    name: str  # what the result's provenance and the benchmark tables call it
    apply: Callable[[Image.Image, int], Image.Image]  # (RGB photo, enlargement) -> RGB photo


def nlm(image: Image.Image, h: float, h_colour: float | None = None) -> Image.Image:
    """OpenCV's colour non-local means; it works in CIELAB: ``h`` filters lightness, ``h_colour`` (default ``h``)
    the two colour channels."""
    import cv2  # only the workers that run Enhance need OpenCV

    bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[..., ::-1])
    out = cv2.fastNlMeansDenoisingColored(bgr, None, float(h), float(h if h_colour is None else h_colour), 7, 21)
    return Image.fromarray(np.ascontiguousarray(out[..., ::-1]))


def denoise_nlm(image: Image.Image, scale: int = 1) -> Image.Image:
    low, high = NLM_H_RANGE
    return nlm(image, min(max(NLM_H_PER_SIGMA * noise_sigma(image), low), high))


def jpeg_nlm(image: Image.Image, scale: int = 1) -> Image.Image:
    return nlm(image, JPEG_NLM_H)


def unsharp(image: Image.Image, scale: int = 1) -> Image.Image:
    return image.filter(ImageFilter.UnsharpMask(**UNSHARP))


def stretch_tone(image: Image.Image, scale: int = 1) -> Image.Image:
    clipped = np.mean(np.asarray(image.convert("L")) >= 254) > CLIPPED_SHARE
    return ImageOps.autocontrast(image, cutoff=EXPOSURE_CUTOFF_CLIPPED if clipped else 0, preserve_tone=True)


def stretch_channels(image: Image.Image, scale: int = 1) -> Image.Image:
    return ImageOps.autocontrast(image, cutoff=0, preserve_tone=False)


def white_patch(image: Image.Image, scale: int = 1) -> Image.Image:
    """Gains that make the mean of the brightest pixels neutral (a product photo's backdrop is usually white or grey)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    bright = rgb[luma >= np.quantile(luma, 1.0 - WHITE_PATCH_SHARE)]
    mean = bright.mean(axis=0).clip(min=1.0)
    gains = np.clip(mean.max() / mean, *WHITE_PATCH_GAINS)
    return Image.fromarray(np.clip(rgb * gains + 0.5, 0, 255).astype(np.uint8))


def edge_gains(image: Image.Image) -> np.ndarray:
    """Per-channel gains (R, G, B; G = 1) that make the photo's mean gradient grey (the grey-edge hypothesis)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    if min(rgb.shape[:2]) < 2:
        return np.ones(3, dtype=np.float32)
    edges = np.abs(np.diff(rgb, axis=0)).mean(axis=(0, 1)) + np.abs(np.diff(rgb, axis=1)).mean(axis=(0, 1))
    edges = edges.clip(min=1e-3)
    return edges[1] / edges


def grey_edge(image: Image.Image, scale: int = 1) -> Image.Image:
    gains = np.clip(edge_gains(image), *WHITE_PATCH_GAINS)
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    return Image.fromarray(np.clip(rgb * gains + 0.5, 0, 255).astype(np.uint8))


def _resize(method: Image.Resampling) -> Callable[[Image.Image, int], Image.Image]:
    def apply(image: Image.Image, scale: int = 1) -> Image.Image:
        return image if scale == 1 else image.resize((image.width * scale, image.height * scale), method)

    return apply


NLM = Tool("OpenCV non-local means", denoise_nlm)
JPEG_NLM = Tool("OpenCV non-local means (gentle)", jpeg_nlm)
UNSHARP_MASK = Tool("Pillow unsharp mask", unsharp)
AUTOCONTRAST = Tool("Pillow autocontrast (tone)", stretch_tone)
CHANNEL_STRETCH = Tool("Pillow autocontrast (per channel)", stretch_channels)
WHITE_PATCH = Tool("White patch", white_patch)
GREY_EDGE = Tool("Grey edge", grey_edge)
LANCZOS = Tool("Pillow Lanczos", _resize(Image.Resampling.LANCZOS))
BICUBIC = Tool("Pillow bicubic", _resize(Image.Resampling.BICUBIC))
