"""Name the dominant colour of a product photo ("navy", "red", ...) from its pixels."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
import re
from functools import lru_cache
from statistics import median

from PIL import Image

# Pixels with less CIELAB chroma than this are named by lightness alone (black, grey, white).
# Nearest-colour matching alone calls faded denim or dark teal "grey", because the grey
# references sit closer to any dull colour than the saturated ones do.
ACHROMATIC_CHROMA = 11.0
# Lightness (L*) boundaries of the achromatic names; black clothes under a lamp rarely read below 20.
BLACK_BELOW_L = 30.0
WHITE_ABOVE_L = 76.0

# Reference shades of the chromatic names, in sRGB. A small set on purpose: shoppers filter by
# "blue", not by "cornflower", and it is what phone photos can support. Some names have more than
# one shade because a garment in shadow keeps its hue but loses lightness and chroma (a mustard
# looking yellow T-shirt is still sold as yellow, washed denim as blue).
CHROMATIC_PALETTE: dict[str, tuple[tuple[int, int, int], ...]] = {
    "beige": ((215, 195, 160), (180, 165, 135)),
    "brown": ((110, 70, 40), (140, 100, 70)),
    "red": ((200, 30, 40), (210, 85, 95)),
    "burgundy": ((115, 25, 45),),
    "pink": ((235, 150, 180), (200, 120, 150)),
    "orange": ((235, 125, 40),),
    "yellow": ((235, 205, 55), (190, 150, 45)),
    "green": ((45, 125, 60), (70, 110, 80), (130, 185, 45)),
    "olive": ((100, 100, 45), (130, 125, 90)),
    "teal": ((20, 110, 110), (35, 80, 80)),
    "light blue": ((140, 185, 225), (150, 170, 195)),
    "blue": ((45, 90, 185), (55, 60, 165), (80, 105, 150)),
    "navy": ((30, 40, 80), (45, 55, 85)),
    "purple": ((110, 55, 140), (90, 40, 165)),
}
COLOUR_NAMES = ("black", "grey", "white", *CHROMATIC_PALETTE)
# The shade a name stands for when a colour is asked for by name (colourways): the chromatic names' first.
ACHROMATIC_SHADES = {"black": (30, 30, 32), "grey": (128, 128, 128), "white": (238, 238, 236)}
_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")

# Pixels closer than this (CIE76 delta E) to the border's median colour count as background.
BACKGROUND_DELTA_E = 14.0
# Below this share of foreground pixels the "background" is probably the garment itself (a white
# shirt on white, a close-up), so every pixel votes instead.
MIN_FOREGROUND_SHARE = 0.04
# Colour is a property of the whole garment; a small thumbnail keeps this fast in pure Python.
ANALYSIS_SIDE = 64
# Only the central part votes: product photos centre the garment, and the edges are where floors,
# carpets and hangers that survive the background test are.
VOTING_MARGIN = 0.2
# Lightness counts half as much as hue and chroma when matching a reference: lighting changes it
# far more than it changes the garment's colour (the idea behind the textile trade's CMC 2:1).
LIGHTNESS_WEIGHT = 0.5


def dominant_colour_name(image: Image.Image) -> str:
    """The colour name (one of :data:`COLOUR_NAMES`) most non-background pixels of ``image`` get.

    The background is estimated as the median colour of the one-pixel border; pixels near it are
    ignored. Each remaining pixel of the central area votes for a name: by lightness when it is
    nearly neutral, else by its nearest chromatic reference in CIELAB, which follows how different
    colours look far better than distances in RGB do.
    """
    small = image.convert("RGB")
    small.thumbnail((ANALYSIS_SIDE, ANALYSIS_SIDE), Image.Resampling.BILINEAR)
    width, height = small.size
    pixels = list(small.get_flattened_data())
    background_lab = srgb_to_lab(_border_median(pixels, width, height))
    centre = _central(pixels, width, height)
    foreground = [p for p in centre if _delta_e(_lab_of(p), background_lab) > BACKGROUND_DELTA_E]
    voters = foreground if len(foreground) >= MIN_FOREGROUND_SHARE * len(centre) else centre
    votes = Counter(colour_name(_quantise(p)) for p in voters)
    # Ties go to the earlier name so the result never depends on dict or hash ordering.
    return max(votes, key=lambda name: (votes[name], -COLOUR_NAMES.index(name)))


def colour_rgb(colour: str) -> tuple[int, int, int]:
    """8-bit sRGB of a colour name (``COLOUR_NAMES``) or a hex code "#rrggbb"; a ValueError otherwise."""
    key = colour.strip().lower()
    if key in ACHROMATIC_SHADES:
        return ACHROMATIC_SHADES[key]
    if key in CHROMATIC_PALETTE:
        return CHROMATIC_PALETTE[key][0]
    match = _HEX.match(colour.strip())
    if match is None:
        raise ValueError(f"unknown colour {colour!r}: give #rrggbb or one of {', '.join(COLOUR_NAMES)}")
    value = int(match.group(1), 16)
    return (value >> 16 & 255, value >> 8 & 255, value & 255)


@lru_cache(maxsize=None)
def colour_name(rgb: tuple[int, int, int]) -> str:
    """The colour name of one 8-bit sRGB colour."""
    lightness, a, b = srgb_to_lab(rgb)
    if (a * a + b * b) ** 0.5 < ACHROMATIC_CHROMA:
        return "black" if lightness < BLACK_BELOW_L else "white" if lightness > WHITE_ABOVE_L else "grey"
    lab = (lightness, a, b)
    return min(_PALETTE_LAB, key=lambda entry: _naming_distance(lab, entry[1]))[0]


def srgb_to_lab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """CIELAB (D65) coordinates of an 8-bit sRGB colour."""
    linear = [_linearise(channel / 255) for channel in rgb]
    x = 0.4124564 * linear[0] + 0.3575761 * linear[1] + 0.1804375 * linear[2]
    y = 0.2126729 * linear[0] + 0.7151522 * linear[1] + 0.0721750 * linear[2]
    z = 0.0193339 * linear[0] + 0.1191920 * linear[1] + 0.9503041 * linear[2]
    fx, fy, fz = (_lab_f(value) for value in (x / 0.95047, y / 1.0, z / 1.08883))
    return (116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz))


def lab_to_srgb(lab: Sequence[float]) -> tuple[float, float, float]:
    """sRGB floats in [0, 1] of one CIELAB (D65) colour; out of gamut clips (``mlcore.cielab`` on tensors)."""
    big_l, a, b = lab
    fy = (big_l + 16) / 116
    x, y, z = (_lab_f_inverse(f) * white for f, white in zip((fy + a / 500, fy, fy - b / 200), (0.95047, 1.0, 1.08883)))
    return tuple(_delinearise(sum(m * v for m, v in zip(row, (x, y, z)))) for row in _XYZ_TO_RGB)


def _inverse(matrix: list[list[float]]) -> list[list[float]]:
    """The inverse of a 3 x 3 matrix (cofactors over the determinant)."""
    (a, b, c), (d, e, f), (g, h, i) = matrix
    cofactors = [[e * i - f * h, c * h - b * i, b * f - c * e],
                 [f * g - d * i, a * i - c * g, c * d - a * f],
                 [d * h - e * g, b * g - a * h, a * e - b * d]]
    determinant = a * cofactors[0][0] + b * cofactors[1][0] + c * cofactors[2][0]
    return [[value / determinant for value in row] for row in cofactors]


_XYZ_TO_RGB = _inverse([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750], [0.0193339, 0.1191920, 0.9503041]])


def _lab_f_inverse(f: float) -> float:
    return f**3 if f > 6 / 29 else 3 * (6 / 29) ** 2 * (f - 4 / 29)


def _delinearise(linear: float) -> float:
    x = min(max(linear, 0.0), 1.0)
    return 12.92 * x if x <= 0.0031308 else 1.055 * x ** (1 / 2.4) - 0.055


def _linearise(channel: float) -> float:
    return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4


def _lab_f(t: float) -> float:
    return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29


def _delta_e(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return sum((p - q) ** 2 for p, q in zip(a, b)) ** 0.5


def _naming_distance(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    return ((LIGHTNESS_WEIGHT * (a[0] - b[0])) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2) ** 0.5


def _central(pixels: list[tuple[int, int, int]], width: int, height: int) -> list[tuple[int, int, int]]:
    left, top = int(width * VOTING_MARGIN), int(height * VOTING_MARGIN)
    right, bottom = max(width - left, left + 1), max(height - top, top + 1)
    return [pixels[y * width + x] for y in range(top, bottom) for x in range(left, right)]


def _border_median(pixels: list[tuple[int, int, int]], width: int, height: int) -> tuple[int, int, int]:
    border = [
        pixels[y * width + x]
        for y in range(height)
        for x in range(width)
        if x in (0, width - 1) or y in (0, height - 1)
    ]
    return tuple(int(median(p[channel] for p in border)) for channel in range(3))  # type: ignore[return-value]


def _quantise(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    # 32 levels per channel: far finer than the names, and it keeps the caches small.
    return (rgb[0] & ~7 | 4, rgb[1] & ~7 | 4, rgb[2] & ~7 | 4)


@lru_cache(maxsize=None)
def _lab_of(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    return srgb_to_lab(_quantise(rgb))


_PALETTE_LAB = [(name, srgb_to_lab(rgb)) for name, shades in CHROMATIC_PALETTE.items() for rgb in shades]
