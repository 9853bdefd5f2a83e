"""Training photos decoded once: squared uint8 pixels and the dominant colour, from the worker's cache.

The cache (``mlcore.photo_cache``) is local to a machine and keyed by the photo's content, so every
training run after the first, and every process of a distributed run, reads tensors instead of decoding
JPEGs (IMAGEGEN_DECODED_PHOTO_CACHE_DIR, IMAGEGEN_DECODED_PHOTO_CACHE_MAX_MB).

The cache only saves time: when it fails (an unwritable or full folder, a broken entry) the failure is
logged and the photo decoded without it, so a cache problem never makes a readable photo count as
unreadable.
"""
import logging
import os
import stat
import tempfile

from ..backends import get_backend
from ..conf import settings
from .products import ProductPhoto

logger = logging.getLogger(__name__)


class TolerantCache:
    """A ``DecodedPhotoCache`` whose errors are logged (the first as a warning, then once at the end)
    and otherwise ignored."""

    def __init__(self, cache) -> None:
        self.cache = cache
        self.errors = 0

    @property
    def root(self):
        return self.cache.root

    @property
    def hits(self) -> int:
        return self.cache.hits

    @property
    def misses(self) -> int:
        return self.cache.misses

    def _failed(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        if self.errors == 1:
            logger.warning(
                "decoded-photo cache %s: could not %s (%s); decoding photos without it", self.cache.root, what, exc
            )

    def get(self, key: str):
        try:
            return self.cache.get(key)
        except Exception as exc:
            self._failed("read an entry", exc)
            return None

    def put(self, key: str, pixels, colour: str) -> None:
        try:
            self.cache.put(key, pixels, colour)
        except Exception as exc:
            self._failed("write an entry", exc)

    def prune(self) -> int:
        try:
            removed = self.cache.prune()
        except Exception as exc:
            self._failed("prune", exc)
            removed = 0
        if self.errors > 1:
            logger.warning("decoded-photo cache %s: %d operations failed", self.cache.root, self.errors)
        return removed


def default_cache_dir() -> str:
    """The per-user default folder in the system's temporary folder (shared by every user of the machine)."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getlogin()
    return os.path.join(tempfile.gettempdir(), f"imagegen-decoded-photos-{uid}")


def _private_folder(path: str) -> bool:
    """Create ``path`` with mode 0700, or check that the existing one is this user's own and not writable by
    others: in a shared /tmp another user could otherwise plant entries that training would read."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.lstat(path)
    except OSError as exc:
        logger.warning("decoded-photo cache %s cannot be created (%s); decoding photos without it", path, exc)
        return False
    if not stat.S_ISDIR(info.st_mode):
        logger.warning("decoded-photo cache %s is not a folder; decoding photos without it", path)
        return False
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or info.st_mode & 0o022):
        logger.warning(
            "decoded-photo cache %s belongs to another user or others may write to it; decoding photos without it",
            path,
        )
        return False
    return True


def decoded_photo_cache():
    """The configured cache, or None when IMAGEGEN_DECODED_PHOTO_CACHE_MAX_MB is 0 (switched off) or the
    default folder cannot be made private to this user."""
    max_mb = settings.DECODED_PHOTO_CACHE_MAX_MB
    if not max_mb:
        return None
    root = settings.DECODED_PHOTO_CACHE_DIR
    if not root:
        root = default_cache_dir()
        if not _private_folder(root):
            return None
    return TolerantCache(get_backend().photo_cache(root, max_bytes=int(max_mb * 1024 * 1024)))


def decode_photo(photo: ProductPhoto, size: int, cache=None):
    """(uint8 3 x size x size pixels, dominant colour name) of ``photo``; OSError or ValueError when the
    photo is unreadable (never because of the cache)."""
    from .uploads import accepted_formats

    with photo.open() as fh:
        data = fh.read()
    # The cache decoded_photo_cache() gives is a TolerantCache: its reads and writes never raise.
    return get_backend().decode_photo(data, size, cache, formats=accepted_formats())
