"""A shop's photos (PIL images) as the inpainting trainer's data (the registry's ``prepare``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from ..photos import crop_training_set
from .config import InpaintConfig


def training_set(photos: Sequence[Image.Image], **options: Any) -> tuple[InpaintConfig, tuple[list[torch.Tensor]]]:
    """(config, (photo tensors,)): see ``photos.crop_training_set``."""
    return crop_training_set(InpaintConfig, photos, **options)
