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
    from mlcore.photo_cache import decode_cached

    with photo.open() as fh:
        data = fh.read()
    return decode_cached(data, size, cache)
