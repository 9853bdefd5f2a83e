"""Tiny synthetic datasets and helpers shared by the mlcore kind tests."""
import numpy as np
import torch


def dataset(size=64, count=8):
    """Flat-coloured squares, one colour per class (2 classes), with a random-coloured block in a corner."""
    gen = torch.Generator().manual_seed(1)
    labels = torch.arange(count) % 2
    images = torch.empty(count, 3, size, size, dtype=torch.uint8)
    for i, label in enumerate(labels):
        colour = torch.tensor([200, 40, 40] if label == 0 else [40, 40, 200], dtype=torch.uint8)
        images[i] = colour[:, None, None]
        images[i, :, : size // 4, : size // 4] = torch.randint(0, 256, (3, 1, 1), generator=gen, dtype=torch.uint8)
    return images, labels.long()


def pixels(images):
    """PIL images -> int16 array N x H x W x 3, for exact comparisons."""
    return np.stack([np.asarray(img, dtype=np.int16) for img in images])
