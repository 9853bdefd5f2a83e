"""A shop's photos (PIL images) as the brand-look trainer's data (the registry's ``prepare``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from ..data import stack_images
from .config import BrandLookConfig


def training_set(photos: Sequence[Image.Image], **options: Any) -> tuple[BrandLookConfig, tuple[torch.Tensor]]:
    """(``BrandLookConfig(**options)``, (the photos fitted into its ``train_size`` square,))."""
    config = BrandLookConfig(**options)
    return config, (stack_images(list(photos), config.train_size),)
