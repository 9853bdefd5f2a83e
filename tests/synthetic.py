"""Tiny synthetic datasets and helpers shared by the mlcore kind tests."""
import numpy as np
import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny networks: on a shared 2-core machine two threads wait on each other more than they work (measured
    0.1 s per training step against 0.015 s with one). Test modules import it as an autouse fixture."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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


def product_photos(count=6, size=(72, 64)):
    """PIL product shots of growing sizes: a striped garment on a plain, slightly noisy light backdrop (the
    background kind's border model is confident about them, so they also make cut-outs)."""
    from PIL import Image

    out = []
    for i in range(count):
        rng = np.random.default_rng(i)
        w, h = size[0] + 8 * i, size[1] + 4 * i
        img = np.full((h, w, 3), (225, 228, 232), np.float64) + rng.normal(0, 1.5, (h, w, 3))
        top, left = h // 5, w // 4
        garment = np.array([160 - 20 * (i % 3), 40 + 30 * (i % 2), 60], np.float64)
        img[top : h - top, left : w - left] = garment + 40 * ((np.arange(h - 2 * top)[:, None, None] // 4) % 2)
        out.append(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)))
    return out
