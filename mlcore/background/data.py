"""A shop's photos (PIL images) as the segmentation trainer's data (the registry's ``prepare``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from PIL import Image

from .composites import training_data
from .config import SegmenterConfig


def training_set(
    photos: Iterable[Image.Image], **options: Any,
) -> tuple[SegmenterConfig, tuple[torch.Tensor, torch.Tensor]]:
    """(``SegmenterConfig(**options)``, (cut-outs, backdrop patches)): the photos on plain backdrops cut out,
    the others' backgrounds as backdrops. ``ValueError`` when no photo has a plain enough backdrop."""
    config = SegmenterConfig(**options)
    data = training_data(photos, config.image_size)
    return config, (data.cutouts, data.backdrops)
