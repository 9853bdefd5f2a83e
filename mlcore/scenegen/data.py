"""A scene set (PIL photos of backdrops) as the scene GAN's training data (the registry's ``prepare``).

Each photo gives square crops resized to ``image_size``: its centre square always, and when the set is small
more squares at seeded random places and scales (a GAN needs a few hundred images to see the variety of one
backdrop, and a 4:3 photo holds several plausible squares of it). The crops are made once, here, so the
trainer's batches are plain indexing and a resumed run sees the same images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from ..photos import photo_tensors
from .config import SceneGANConfig

# Fewer usable photos than this and a scene set is refused: below it even with extra crops the generator
# sees a handful of backdrops and learns to copy them. The Django side shows this number.
MIN_PHOTOS = 12
# A small set gets extra crops until it has about this many training images (at most MAX_CROPS per photo).
TARGET_IMAGES = 240
MAX_CROPS = 8
# Extra crops are squares of this share of the photo's shorter side: large enough to keep the scene's
# layout, small enough to differ from the centre crop.
CROP_SCALE = (0.6, 0.95)
# A photo is usable when its shorter side is at least this share of ``image_size``: smaller ones would be
# enlarged so much that the generator learns blur.
MIN_SIDE_SHARE = 0.5
# Crops are seeded by this (with the photo's index), so preparing a set twice gives the same images.
CROP_SEED = 0


def crops_per_photo(count: int) -> int:
    """How many crops each of ``count`` usable photos gives: 1 from ``TARGET_IMAGES`` photos up, at most
    ``MAX_CROPS``."""
    return max(1, min(MAX_CROPS, math.ceil(TARGET_IMAGES / max(count, 1))))


def square_crops(photo: Image.Image, count: int, size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """``count`` squares of an RGB ``photo`` resized to ``size`` (uint8 3 x size x size): the centre square first,
    then squares of ``CROP_SCALE`` x its shorter side at random places (every draw from ``generator``)."""
    width, height = photo.size
    short = min(width, height)
    boxes = [((width - short) // 2, (height - short) // 2, short)]
    for _ in range(count - 1):
        low, high = CROP_SCALE
        side = max(1, round(short * (low + (high - low) * float(torch.rand((), generator=generator)))))
        left = int(torch.randint(width - side + 1, (), generator=generator))
        top = int(torch.randint(height - side + 1, (), generator=generator))
        boxes.append((left, top, side))
    return [
        pil_to_tensor(photo.resize((size, size), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side)))
        for left, top, side in boxes
    ]


def training_set(
    photos: Sequence[Image.Image],
    *,
    image_size: int = 256,
    min_photos: int = MIN_PHOTOS,
    crops: int | None = None,
    **options: Any,
) -> tuple[SceneGANConfig, tuple[torch.Tensor]]:
    """(``SceneGANConfig(image_size=image_size, **options)``, (uint8 N x 3 x S x S backdrops,)).

    ``crops`` per photo defaults to ``crops_per_photo`` (more for small sets). Photos whose shorter side is
    below ``MIN_SIDE_SHARE`` x ``image_size`` are left out; ``ValueError`` (saying how many are needed) when
    fewer than ``min_photos`` remain (``MIN_PHOTOS``; tests lower it)."""
    config = SceneGANConfig(image_size=image_size, **options)
    min_side = max(1, math.ceil(MIN_SIDE_SHARE * image_size))
    # Transparency flattened onto white and huge photos shrunk as for the other photo models; the crops are
    # then taken from PIL images, whose Lanczos resize antialiases.
    usable = photo_tensors(photos, max_side=4 * image_size, min_side=min_side)
    if len(usable) < min_photos:
        raise ValueError(
            f"A scene set needs at least {min_photos} photos at least {min_side} pixels on their shorter side; "
            f"got {len(usable)} usable of {len(photos)}."
        )
    per_photo = crops_per_photo(len(usable)) if crops is None else int(crops)
    if per_photo < 1:
        raise ValueError(f"crops must be >= 1, got {crops}")
    images = []
    for index, tensor in enumerate(usable):
        generator = torch.Generator().manual_seed(CROP_SEED + index)
        photo = Image.fromarray(tensor.permute(1, 2, 0).numpy(), "RGB")
        images += square_crops(photo, per_photo, image_size, generator)
    return config, (torch.stack(images),)
