"""Turn a shop's photos (PIL images) into what the restoration trainer takes."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

# Transparent areas become white, like a studio backdrop (as mlcore.data does for the generators).
ALPHA_BACKGROUND = (255, 255, 255)


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
