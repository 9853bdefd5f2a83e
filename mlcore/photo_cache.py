"""Decoded training photos kept on disk as uint8 tensors.

Decoding a catalogue photo, fitting it into the model's square and naming its dominant colour costs about
12 ms of CPU per photo (533 x 400 JPEGs, 2-core machine): 20 minutes for 100,000 products, paid again by
every training run and by every process of a distributed one. Entries are keyed by the SHA-256 of the
photo's bytes and the square's side, so a changed photo is a new entry and an entry never goes stale;
only the least recently used entries are ever removed, to stay under the size cap.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

SUFFIX = ".pt"


def photo_key(data: bytes, size: int) -> str:
    """The cache key of a photo's bytes squared to ``size`` pixels."""
    return f"{hashlib.sha256(data).hexdigest()}-{int(size)}"


class DecodedPhotoCache:
    """A folder of ``{"pixels": uint8 3 x S x S, "colour": str}`` entries, written atomically.

    Safe to share between the processes of one machine (each write is a rename), and safe to delete
    at any time: a missing or unreadable entry is decoded again."""

    def __init__(self, root: str | os.PathLike, *, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.hits = self.misses = 0

    def _path(self, key: str) -> Path:
        # Two-level fan-out keeps folders small for a catalogue of 100,000 photos.
        return self.root / key[:2] / f"{key}{SUFFIX}"

    def get(self, key: str) -> tuple[torch.Tensor, str] | None:
        """The cached pixels and colour name of ``key``, or None (counted as a miss)."""
        path = self._path(key)
        try:
            entry = torch.load(path, map_location="cpu", weights_only=True)
            pixels, colour = entry["pixels"], str(entry["colour"])
            if pixels.dtype != torch.uint8 or pixels.dim() != 3:
                raise ValueError(f"bad cache entry {path}")
        except FileNotFoundError:
            self.misses += 1
            return None
        except Exception:  # a truncated or foreign file: forget it and decode again
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        # Touching the entry makes eviction least-recently-used rather than oldest-written.
        os.utime(path)
        self.hits += 1
        return pixels, colour

    def put(self, key: str, pixels: torch.Tensor, colour: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as fh:
                torch.save({"pixels": pixels.contiguous().clone(), "colour": colour}, fh)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def prune(self) -> int:
        """Remove the least recently used entries until the folder is under ``max_bytes``; returns how many."""
        if self.max_bytes is None or not self.root.exists():
            return 0
        entries = []
        total = 0
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for item in os.scandir(folder):
                if item.name.endswith(SUFFIX):
                    stat = item.stat()
                    entries.append((stat.st_mtime, stat.st_size, item.path))
                    total += stat.st_size
        removed = 0
        for _, size, path in sorted(entries):
            if total <= self.max_bytes:
                break
            Path(path).unlink(missing_ok=True)
            total -= size
            removed += 1
        return removed


def decode_cached(
    data: bytes, size: int, cache: DecodedPhotoCache | None = None, *, formats: Sequence[str] | None = None
) -> tuple[torch.Tensor, str]:
    """A photo's bytes as (uint8 3 x size x size pixels fitted into the square, dominant colour name), from
    ``cache`` when it holds them, else decoded with the ``formats`` decoders only (``data.load_image``) and
    then kept there. ``ValueError`` when unreadable."""
    from .conditioning.colour import dominant_colour_name
    from .data import load_image, to_square_tensor

    key = photo_key(data, size)
    entry = cache.get(key) if cache is not None else None
    if entry is None:
        picture = load_image(data, formats)
        entry = (to_square_tensor(picture, size), dominant_colour_name(picture))
        if cache is not None:
            cache.put(key, *entry)
    return entry
