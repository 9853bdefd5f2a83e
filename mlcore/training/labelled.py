"""The generators' training set: uint8 images N x 3 x S x S with their condition ids, kept on the device."""

from __future__ import annotations

from typing import Any

import torch


def check_dataset(config: Any, images: torch.Tensor, labels: torch.Tensor) -> None:
    """``ValueError`` unless ``images`` are uint8 N x 3 x S x S and ``labels`` the config's condition ids for them."""
    size = config.image_size
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
        raise ValueError(
            f"images must be uint8 N x 3 x {size} x {size}, got {images.dtype} {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise ValueError("cannot train on an empty dataset")
    config.check_condition_ids(labels, len(images))


class LabelledImages:
    """Checked images and labels on ``device``: a catalogue is hundreds of photos, small enough to stay there as
    uint8 and be indexed without a data loader."""

    def __init__(self, config: Any, images: torch.Tensor, labels: torch.Tensor, device: torch.device) -> None:
        check_dataset(config, images, labels)
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.device = device

    def draw(self, rng: torch.Generator, count: int) -> torch.Tensor:
        """``count`` random indices (with replacement) from ``rng``, on the device."""
        return torch.randint(0, len(self.images), (count,), generator=rng).to(self.device)

    def pixels(self, index: torch.Tensor) -> torch.Tensor:
        """The images at ``index`` as floats in [-1, 1]."""
        return self.images[index].float().div_(127.5).sub_(1.0)
