"""Does a trained restorer improve photos it never saw? Held-out photos are degraded with the benchmark's
fixed degradations; the restorer's output and the untouched (enlarged) input are scored against the clean
photo. A restorer whose mean gain over the untouched input is not positive makes photos worse on average,
and the services keep it from going live."""

from __future__ import annotations

import io
import math
import statistics

import torch
from PIL import Image

from ..photos import photo_tensors, to_float
from .degrade import named
from .metrics import psnr
from .sampler import Restorer

# What a shop's photos suffer from most; the x4 enlargement is left out to keep validation quick (the
# benchmark covers it).
DEGRADATIONS = ("noise15", "noise25", "blur", "jpeg20", "downscale2", "underexposed", "overexposed", "colourcast")
CROP = 192


def centre_crop(image: torch.Tensor, side: int, step: int) -> torch.Tensor:
    """The centre square of ``image`` (3 x H x W) at most ``side`` pixels, its side a multiple of ``step``."""
    h, w = image.shape[-2:]
    s = min(side, h, w) // step * step
    if s < step:
        raise ValueError(f"a {w} x {h} photo is too small to validate on (at least {step} pixels a side)")
    top, left = (h - s) // 2, (w - s) // 2
    return image[..., top : top + s, left : left + s]


@torch.inference_mode()
def validate(restorer, photos: list[torch.Tensor], *, degradations=DEGRADATIONS, crop: int = CROP, seed: int = 0) -> dict:
    """Per degradation, mean PSNR of the untouched input and of ``restorer``'s output on ``photos``
    (float 3 x H x W in [0, 1]), and the gain; ``mean_gain_db`` over all degradations."""
    if not photos:
        raise ValueError("no photos to validate on")
    step = math.lcm(4, restorer.config.alignment)
    clean = [centre_crop(p, crop, step).unsqueeze(0) for p in photos]
    per = {}
    for index, name in enumerate(degradations):
        degradation = named(name)
        before, after = [], []
        for i, target in enumerate(clean):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + 1_000 * index + i)
            degraded = degradation.apply(target, generator)
            before.append(float(psnr(degradation.network_input(degraded).clamp(0, 1), target)[0]))
            after.append(float(psnr(restorer.restore_tensor(degraded, upscale=degradation.scale), target)[0]))
        per[name] = {
            "input_psnr": round(statistics.fmean(before), 3),
            "psnr": round(statistics.fmean(after), 3),
            "gain_db": round(statistics.fmean(after) - statistics.fmean(before), 3),
        }
    return {
        "photos": len(clean),
        "crop": clean[0].shape[-1],
        "per_degradation": per,
        "mean_gain_db": round(statistics.fmean(v["gain_db"] for v in per.values()), 3),
    }


def validate_checkpoint(checkpoint: bytes, photos: list[Image.Image], seed: int, *, max_side: int | None = 1024) -> dict:
    """``validate`` of a checkpoint's restorer on held-out PIL photos (the registry's ``validate``)."""
    restorer = Restorer.from_checkpoint(io.BytesIO(checkpoint))
    return validate(restorer, [to_float(t) for t in photo_tensors(photos, max_side=max_side)], seed=seed)
