"""A shop's photos (PIL images) as the restoration trainer's data (the registry's ``prepare``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from ..photos import crop_training_set
from .config import RestorationConfig


def training_set(photos: Sequence[Image.Image], **options: Any) -> tuple[RestorationConfig, tuple[list[torch.Tensor]]]:
    """(config, (photo tensors,)): see ``photos.crop_training_set``."""
    return crop_training_set(RestorationConfig, photos, **options)
