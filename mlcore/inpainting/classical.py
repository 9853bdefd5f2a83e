"""The classical fills Repair and Expand are measured against, and run wherever the trained inpainting model
did not beat them on the shop's held-out photos.

Each fill takes a uint8 H x W x 3 photo and a bool H x W hole (True = fill) and returns the filled photo, every
pixel outside the hole the input's own. Radii and settings are the Repair benchmark's (bench/inpaint.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

OPENCV_RADIUS = 5


@dataclass(frozen=True)
class Fill:
    name: str
    apply: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _opencv(flag_name: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    def apply(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        import cv2  # only the workers that repair need OpenCV

        out = cv2.inpaint(np.ascontiguousarray(rgb), hole.astype(np.uint8) * 255, OPENCV_RADIUS, getattr(cv2, flag_name))
        return np.where(hole[..., None], out, rgb)

    return apply


def _known_box(hole: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the rectangle of known pixels Expand grows from (the photo itself)."""
    rows, cols = np.nonzero((~hole).any(axis=1))[0], np.nonzero((~hole).any(axis=0))[0]
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _padded(mode: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Expand's padding fills: the known rectangle padded out to the canvas by numpy's ``mode``."""
    def apply(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
        top, bottom, left, right = _known_box(hole)
        inner = rgb[top:bottom, left:right]
        pads = ((top, rgb.shape[0] - bottom), (left, rgb.shape[1] - right), (0, 0))
        out = np.pad(inner, pads, mode=mode)  # numpy reflects again where a margin is wider than the photo
        return np.where(hole[..., None], out, rgb)

    return apply


def edge_colour(rgb: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Each side's new margin in the median colour of the photo's pixels along that side (a plain backdrop)."""
    top, bottom, left, right = _known_box(hole)
    out = rgb.copy()
    inner = rgb[top:bottom, left:right]
    sides = {"top": inner[0], "bottom": inner[-1], "left": inner[:, 0], "right": inner[:, -1]}
    colour = {side: np.median(pixels, axis=0).round().astype(np.uint8) for side, pixels in sides.items()}
    out[:top] = colour["top"]
    out[bottom:] = colour["bottom"]
    out[top:bottom, :left] = colour["left"]
    out[top:bottom, right:] = colour["right"]
    return np.where(hole[..., None], out, rgb)


TELEA = Fill("OpenCV Telea", _opencv("INPAINT_TELEA"))
NAVIER_STOKES = Fill("OpenCV Navier-Stokes", _opencv("INPAINT_NS"))
REFLECT = Fill("Reflect padding", _padded("symmetric"))
EDGE = Fill("Edge pixels repeated", _padded("edge"))
EDGE_COLOUR = Fill("Edge colour", edge_colour)
REPAIR_FILLS = (TELEA, NAVIER_STOKES)
# Not reflect padding: it mirrors the product into the margins, a second product the shop does not sell (the
# Expand benchmark measures it all the same).
EXPAND_FILLS = (EDGE_COLOUR, EDGE, TELEA)


def named(name: str, fills=(*REPAIR_FILLS, *EXPAND_FILLS, REFLECT)) -> Fill:
    for fill in fills:
        if fill.name == name:
            return fill
    raise KeyError(f"no fill named {name!r}; known: {[f.name for f in fills]}")
