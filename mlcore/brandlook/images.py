"""PIL <-> tensor plumbing shared by the sampler and the classical baselines: every mapping of this package is
a per-pixel colour function, applied to the RGB at full resolution while the alpha channel is carried over."""

from __future__ import annotations

from collections.abc import Callable

import torch
from PIL import Image

from ..background.images import prepare


def rgb_tensor(image: Image.Image) -> torch.Tensor:
    """An "RGB" PIL image as floats 3 x H x W in [0, 1]."""
    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return pixels.view(image.height, image.width, 3).permute(2, 0, 1).float().div_(255.0)


def rgb_image(rgb: torch.Tensor) -> Image.Image:
    """Floats 3 x H x W in [0, 1] as an "RGB" PIL image (rounded to the nearest level)."""
    pixels = rgb.detach().clamp(0.0, 1.0).mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).contiguous().cpu()
    return Image.frombytes("RGB", (pixels.shape[1], pixels.shape[0]), pixels.numpy().tobytes())


def map_colours(image: Image.Image, mapping: Callable[[torch.Tensor], torch.Tensor]) -> Image.Image:
    """``image`` (any mode ``background.images.prepare`` reads, EXIF-upright) with ``mapping`` applied to its RGB
    (3 x H x W floats in [0, 1] -> same); "RGBA" with the original alpha when it had a real one, else "RGB"."""
    rgb, alpha = prepare(image)
    out = rgb_image(mapping(rgb_tensor(rgb)))
    if alpha is not None:
        out.putalpha(alpha)
    return out
