"""Does a trained restorer improve photos it never saw, and does it beat the classical tools? Held-out photos
are degraded with the benchmark's fixed degradations; the restorer's output, each task's classical tools and
the untouched (enlarged) input are scored against the clean photo. Per Enhance task (``tasks.TASKS``) the best
of them is the task's choice, which the operation then runs: a model that loses to a tool, or everything
that loses to the untouched photo, never reaches a shop's photo."""

from __future__ import annotations

import io
import math
import statistics

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor, to_pil_image

from ..method_choice import MODEL, UNCHANGED, choose
from ..photos import photo_tensors, to_float, to_uint8
from .degrade import named
from .metrics import psnr
from .sampler import Restorer
from .tasks import ORDER, TASKS

CROP = 192


def centre_crop(image: torch.Tensor, side: int, step: int) -> torch.Tensor:
    """The centre square of ``image`` (3 x H x W) at most ``side`` pixels, its side a multiple of ``step``."""
    h, w = image.shape[-2:]
    s = min(side, h, w) // step * step
    if s < step:
        raise ValueError(f"a {w} x {h} photo is too small to validate on (at least {step} pixels a side)")
    top, left = (h - s) // 2, (w - s) // 2
    return image[..., top : top + s, left : left + s]


def _tool_output(tool, degraded: torch.Tensor, scale: int) -> torch.Tensor:
    image = to_pil_image(to_uint8(degraded[0]))
    return to_float(pil_to_tensor(tool.apply(image, scale))).unsqueeze(0)


@torch.inference_mode()
def validate(restorer, photos: list[torch.Tensor], *, tasks=ORDER, crop: int = CROP, seed: int = 0) -> dict:
    """Per degradation of ``tasks``, mean PSNR of the untouched input, ``restorer``'s output (None: the model is
    not measured) and every tool on ``photos`` (float 3 x H x W in [0, 1]); per task, its choice (``method_choice.choose``);
    ``mean_gain_db``: the model's mean gain over the untouched input."""
    if not photos:
        raise ValueError("no photos to validate on")
    step = math.lcm(16, restorer.config.alignment if restorer is not None else 1)
    clean = [centre_crop(p, crop, step).unsqueeze(0) for p in photos]
    per, choices = {}, {}
    index = 0
    for task_name in tasks:
        task = TASKS[task_name]
        sums: dict[str, list[float]] = {}
        for name in task.degradations:
            degradation = named(name)
            scores: dict[str, list[float]] = {UNCHANGED: [], **({MODEL: []} if restorer is not None else {}),
                                              **{tool.name: [] for tool in task.tools}}
            for i, target in enumerate(clean):
                generator = torch.Generator().manual_seed(seed * 1_000_003 + 1_000 * index + i)
                degraded = degradation.apply(target, generator)
                scores[UNCHANGED].append(float(psnr(degradation.network_input(degraded).clamp(0, 1), target)[0]))
                if restorer is not None:
                    scores[MODEL].append(float(psnr(restorer.restore_tensor(degraded, upscale=degradation.scale), target)[0]))
                for tool in task.tools:
                    scores[tool.name].append(float(psnr(_tool_output(tool, degraded, degradation.scale), target)[0]))
            index += 1
            per[name] = {key: round(statistics.fmean(v), 3) for key, v in scores.items()}
            for key, v in scores.items():
                sums.setdefault(key, []).append(statistics.fmean(v))
        if restorer is not None:
            choices[task_name] = choose({k: statistics.fmean(v) for k, v in sums.items()}, may_stay_unchanged=not task.enlarges)
    model_gain = ([per[d][MODEL] - per[d][UNCHANGED] for d in per] if restorer is not None else [])
    return {
        "photos": len(clean),
        "crop": clean[0].shape[-1],
        "per_degradation": per,
        "tasks": choices,
        "mean_gain_db": round(statistics.fmean(model_gain), 3) if model_gain else None,
    }


def validate_checkpoint(checkpoint: bytes, photos: list[Image.Image], seed: int, *, max_side: int | None = 1024) -> dict:
    """``validate`` of a checkpoint's restorer on held-out PIL photos (the registry's ``validate``)."""
    restorer = Restorer.from_checkpoint(io.BytesIO(checkpoint))
    return validate(restorer, [to_float(t) for t in photo_tensors(photos, max_side=max_side)], seed=seed)
