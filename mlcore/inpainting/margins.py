"""Expand's geometry: the margins that bring a photo to an aspect ratio, and their limits. Plain Python, so a
web process can check a request without numpy or torch."""

from __future__ import annotations

import math

ASPECTS = {"1:1": (1, 1), "4:5": (4, 5), "3:4": (3, 4), "2:3": (2, 3), "4:3": (4, 3), "3:2": (3, 2), "16:9": (16, 9),
           "9:16": (9, 16)}
# A margin wider than this share of the photo's side is more invented backdrop than photo.
MAX_GROWTH = 2.0
MAX_OUTPUT_PIXELS = 64_000_000


def margins_for(size: tuple[int, int], aspect: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixels that bring a ``size`` photo to ``aspect`` ("4:5": width 4, height 5)
    by growing one dimension, split evenly between the two sides (the odd pixel to the right or bottom)."""
    if aspect not in ASPECTS:
        raise ValueError(f"unknown aspect {aspect!r}; known: {', '.join(ASPECTS)}")
    width, height = size
    wide, high = ASPECTS[aspect]
    if width * high < height * wide:  # too narrow: widen
        extra = math.ceil(height * wide / high) - width
        return extra // 2, 0, extra - extra // 2, 0
    extra = math.ceil(width * high / wide) - height
    return 0, extra // 2, 0, extra - extra // 2


def check_margins(size: tuple[int, int], margins: tuple[int, int, int, int]) -> None:
    width, height = size
    left, top, right, bottom = margins
    if min(margins) < 0 or not any(margins):
        raise ValueError("margins must be >= 0 and at least one above 0")
    if left + right > MAX_GROWTH * width or top + bottom > MAX_GROWTH * height:
        raise ValueError(f"the new margins may add at most {MAX_GROWTH:.0%} of the photo's width and height; "
                         f"{margins} on a {width} x {height} photo is more")
    if (width + left + right) * (height + top + bottom) > MAX_OUTPUT_PIXELS:
        raise ValueError(f"the expanded photo would be over {MAX_OUTPUT_PIXELS // 1_000_000} megapixels")
