"""A shop's photos at their own resolution, as the photo models train on them: PIL images to uint8 tensors,
their checks, random oriented crops, and a crop size that fits the catalogue.

Shared by restoration and inpainting (and anything else that learns from crops of whole photos).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

# Transparent areas become white, like a studio backdrop (as mlcore.data does for the generators).
ALPHA_BACKGROUND = (255, 255, 255)
# Training crops are never smaller than this, however small the catalogue's photos.
MIN_CROP = 32


def has_alpha(image: Image.Image) -> bool:
    """Whether a PIL image carries transparency (an alpha band, or a palette's transparent entry)."""
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def to_float(image: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 in [0, 1]."""
    if image.dtype != torch.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    return image.float().div_(255.0)


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """Float in [0, 1] -> uint8 (rounded, clipped)."""
    return image.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)


def photo_tensors(images: Iterable[Image.Image], *, max_side: int | None = 1024, min_side: int = 0) -> list[torch.Tensor]:
    """uint8 3 x H x W tensors at the photos' own resolution (transparency flattened onto white).

    Photos longer than ``max_side`` are shrunk to it (Lanczos): they keep their detail per pixel, and a
    shop's 24-megapixel originals would otherwise fill memory. Photos whose shorter side is below
    ``min_side`` (pass the config's ``crop_size``) are left out.
    """
    tensors = []
    for image in images:
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            flat = Image.new("RGB", rgba.size, ALPHA_BACKGROUND)
            flat.paste(rgba, mask=rgba.getchannel("A"))
            image = flat
        image = image.convert("RGB")
        if max_side is not None and max(image.size) > max_side:
            image = image.copy()
            image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        if min(image.size) >= min_side:
            tensors.append(pil_to_tensor(image))
    return tensors


def check_photos(images: Sequence[torch.Tensor] | torch.Tensor, crop_size: int) -> list[torch.Tensor]:
    """The photos as a list of uint8 3 x H x W tensors, each at least ``crop_size`` on both sides, else
    ``ValueError`` naming the first one that is not."""
    photos = list(images.unbind(0)) if isinstance(images, torch.Tensor) and images.dim() == 4 else list(images)
    if not photos:
        raise ValueError("cannot train on an empty dataset")
    for i, photo in enumerate(photos):
        if not isinstance(photo, torch.Tensor) or photo.dtype != torch.uint8 or photo.dim() != 3 or photo.shape[0] != 3:
            shape = tuple(photo.shape) if isinstance(photo, torch.Tensor) else type(photo).__name__
            raise ValueError(f"photo {i} must be a uint8 3 x H x W tensor, got {shape}")
        if min(photo.shape[1:]) < crop_size:
            raise ValueError(
                f"photo {i} is {photo.shape[2]} x {photo.shape[1]}; training crops are {crop_size} px, so every "
                f"photo must be at least {crop_size} x {crop_size}"
            )
    return [photo.cpu().contiguous() for photo in photos]


def dihedral(image: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 flips/rotations (``code`` 0-7) of a square crop: restoring or filling a photo is the same
    task in every orientation, so each orientation is a free extra training sample."""
    if code & 1:
        image = image.flip(-1)
    if code & 2:
        image = image.flip(-2)
    if code & 4:
        image = image.transpose(-1, -2)
    return image


def random_crop(photo: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A ``size`` square of a uint8 3 x H x W photo at a random place and orientation, as floats in [0, 1].

    Three draws from ``generator``, always in this order: top, left, orientation."""
    top = int(torch.randint(photo.shape[1] - size + 1, (), generator=generator))
    left = int(torch.randint(photo.shape[2] - size + 1, (), generator=generator))
    code = int(torch.randint(8, (), generator=generator))
    return dihedral(to_float(photo[:, top : top + size, left : left + size]), code)


def crop_fitted(config_class: type, photos: Sequence[Image.Image], **options: Any) -> Any:
    """``config_class(**options)`` with crops as large as its default, or as the shorter side of the median
    photo when the catalogue's photos are small (photos shorter than the crop are then left out)."""
    if not photos:
        raise ValueError("no photos to fit the crop size to")
    default = config_class(**options)
    step = max(default.alignment, 4)
    median_side = sorted(min(photo.size) for photo in photos)[len(photos) // 2]
    return config_class(**{**options, "crop_size": max(MIN_CROP, min(default.crop_size, median_side // step * step))})


def crop_training_set(
    config_class: type, photos: Sequence[Image.Image], *, max_side: int | None = 1024, **options: Any,
) -> tuple[Any, tuple[list[torch.Tensor]]]:
    """(the config of a model trained on crops, (the photos as tensors,)) for ``Trainer(config, *data)``: the
    config with ``options`` and a crop size fitted to the catalogue, the photos at least that size, shrunk to
    ``max_side``. ``ValueError`` when no photo is large enough."""
    config = crop_fitted(config_class, photos, **options)
    tensors = photo_tensors(photos, max_side=max_side, min_side=config.crop_size)
    if not tensors:
        raise ValueError(
            f"No photo is at least {config.crop_size} pixels on its shorter side; the model learns from crops that size."
        )
    return config, (tensors,)
