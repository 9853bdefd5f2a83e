"""Training photos decoded once: squared uint8 pixels and the dominant colour, from the worker's cache.

The cache (``mlcore.photo_cache``) is local to a machine and keyed by the photo's content, so every
training run after the first, and every process of a distributed run, reads tensors instead of decoding
JPEGs (IMAGEGEN_DECODED_PHOTO_CACHE_DIR, IMAGEGEN_DECODED_PHOTO_CACHE_MAX_MB)."""
import os
import tempfile

from ..conf import settings
from .products import ProductPhoto


def decoded_photo_cache():
    """The configured cache, or None when IMAGEGEN_DECODED_PHOTO_CACHE_MAX_MB is 0 (switched off)."""
    from mlcore.photo_cache import DecodedPhotoCache

    max_mb = settings.DECODED_PHOTO_CACHE_MAX_MB
    if not max_mb:
        return None
    root = settings.DECODED_PHOTO_CACHE_DIR or os.path.join(tempfile.gettempdir(), "imagegen-decoded-photos")
    return DecodedPhotoCache(root, max_bytes=int(max_mb * 1024 * 1024))


def decode_photo(photo: ProductPhoto, size: int, cache=None):
    """(uint8 3 x size x size pixels, dominant colour name) of ``photo``; OSError or ValueError when unreadable."""
    from mlcore.conditioning.colour import dominant_colour_name
    from mlcore.data import load_image, to_square_tensor
    from mlcore.photo_cache import photo_key

    with photo.open() as fh:
        data = fh.read()
    key = photo_key(data, size)
    if cache is not None:
        entry = cache.get(key)
        if entry is not None:
            return entry
    picture = load_image(data)
    pixels, colour = to_square_tensor(picture, size), dominant_colour_name(picture)
    if cache is not None:
        cache.put(key, pixels, colour)
    return pixels, colour
