"""Photos into the tensors the models learn from."""
from collections.abc import Sequence
from typing import BinaryIO

import torch
from mlcore.conditioning.colour import dominant_colour_name
from mlcore.data import load_image
from mlcore.photo_cache import DecodedPhotoCache, decode_cached


def photo_cache(root: str, *, max_bytes: int) -> DecodedPhotoCache:
    """The on-disk cache of decoded photos under ``root``, pruned to ``max_bytes``."""
    return DecodedPhotoCache(root, max_bytes=max_bytes)


def decode_photo(data: bytes, size: int, cache, *, formats: Sequence[str]):
    """(uint8 3 x size x size pixels, dominant colour name) of a photo's bytes, through ``cache`` when given;
    OSError or ValueError when the photo is unreadable."""
    return decode_cached(data, size, cache, formats=formats)


def stack_training_set(pictures: list, labels: list[int]):
    """(images N x 3 x S x S, class ids N) as the trainers take them."""
    return torch.stack(pictures), torch.tensor(labels, dtype=torch.long)


def photo_colour(fh: BinaryIO, formats: Sequence[str]) -> str:
    """The dominant colour name of an open photo file."""
    return dominant_colour_name(load_image(fh, formats))
