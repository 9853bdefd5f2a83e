"""Does a trained inpainting model fill holes and new margins better than the classical fills, on photos it
never saw? Per task (small holes, large holes, expanded margins) every contender fills the same seeded holes of
the held-out photos, scored by PSNR over the filled pixels only; ``method_choice.choose`` makes the task's
choice, which Repair and Expand then run."""

from __future__ import annotations

import io
import statistics

import numpy as np
import torch
from PIL import Image

from ..method_choice import MODEL, choose
from ..photos import photo_tensors
from . import classical
from .masks import random_mask
from .outpaint import canvas
from .sampler import Inpainter

CROP = 192
# Expand is measured by cutting this share of the crop's width (then of its height) off both sides and growing it back.
EXPAND_CUT = 0.25
TASKS = {"repair_small": classical.REPAIR_FILLS, "repair_large": classical.REPAIR_FILLS, "expand": classical.EXPAND_FILLS}
# Holes over this share of the photo are repaired by the "repair_large" choice.
LARGE_HOLE = 0.1


def _crop(photo: torch.Tensor, side: int) -> np.ndarray:
    h, w = photo.shape[-2:]
    s = min(side, h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return photo[:, top : top + s, left : left + s].permute(1, 2, 0).numpy()


def _psnr(out: np.ndarray, clean: np.ndarray, hole: np.ndarray) -> float:
    err = (out[hole].astype(np.float64) - clean[hole].astype(np.float64)) / 255.0
    return float(10 * np.log10(1.0 / max(np.mean(err**2), 1e-10)))


def expand_cases(clean: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(start canvas, hole) pairs: the crop cut narrower, then lower, and grown back by reflection."""
    s = clean.shape[0]
    cut = round(s * EXPAND_CUT / 2)
    cases = []
    for axis in (1, 0):
        inner = clean[:, cut : s - cut] if axis == 1 else clean[cut : s - cut]
        margins = (cut, 0, cut, 0) if axis == 1 else (0, cut, 0, cut)
        cases.append(canvas(inner, margins))
    return cases


def _cases(task: str, clean: np.ndarray, index: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    if task == "expand":
        return expand_cases(clean)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + index * 7 + (task == "repair_large"))
    hole = random_mask(generator, *clean.shape[:2], size=task.removeprefix("repair_")).numpy()
    return [(np.where(hole[..., None], 0, clean).astype(np.uint8), hole)]


@torch.inference_mode()
def validate(inpainter, photos: list[torch.Tensor], *, crop: int = CROP, seed: int = 0) -> dict:
    """Per task of ``TASKS``: mean PSNR in the filled pixels of the model and each classical fill on ``photos``
    (uint8 3 x H x W), and the task's choice."""
    if not photos:
        raise ValueError("no photos to validate on")
    clean = [_crop(p, crop) for p in photos]
    choices = {}
    for task, fills in TASKS.items():
        scores: dict[str, list[float]] = {MODEL: [], **{fill.name: [] for fill in fills}}
        for index, target in enumerate(clean):
            for start, hole in _cases(task, target, index, seed):
                mask = Image.fromarray((hole * 255).astype(np.uint8))
                scores[MODEL].append(_psnr(np.asarray(inpainter.repair(Image.fromarray(start), mask)), target, hole))
                for fill in fills:
                    scores[fill.name].append(_psnr(fill.apply(start, hole), target, hole))
        choices[task] = choose({k: statistics.fmean(v) for k, v in scores.items()}, may_stay_unchanged=False)
    return {"photos": len(clean), "crop": int(clean[0].shape[0]), "tasks": choices}


def validate_checkpoint(checkpoint: bytes, photos: list[Image.Image], seed: int, *, max_side: int | None = 1024) -> dict:
    """``validate`` of a checkpoint's inpainter on held-out PIL photos (the registry's ``validate``)."""
    inpainter = Inpainter.from_checkpoint(io.BytesIO(checkpoint))
    return validate(inpainter, photo_tensors(photos, max_side=max_side), seed=seed)
