"""Expand: a photo on a larger canvas (another aspect ratio, or margins), the new margins filled by the trained
inpainting model or a classical fill; the photo's own pixels stay exactly where they were, bit for bit."""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..method_choice import unmeasured
from ..photos import has_alpha
from . import classical
from .margins import check_margins

def canvas(photo: np.ndarray, margins: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(the photo uint8 H x W x 3 on the larger canvas, reflected out into the margins as a starting point; the
    hole: True on the margins)."""
    left, top, right, bottom = margins
    padded = np.pad(photo, ((top, bottom), (left, right), (0, 0)), mode="symmetric")
    hole = np.ones(padded.shape[:2], dtype=bool)
    hole[top : top + photo.shape[0], left : left + photo.shape[1]] = False
    return padded, hole


def expand(photo: Image.Image, margins: tuple[int, int, int, int], choice: dict | None = None,
           inpainter=None) -> Image.Image:
    """``photo`` grown by ``margins`` (left, top, right, bottom), the margins filled by ``choice``
    ({"method": "model"} or {"method": "tool", "tool": a fill's name}; default the edge colour). An image with
    transparency keeps it; its margins take the alpha of the photo's edge they continue (a cut-out on a
    transparent backdrop gets a transparent margin, not colours that were hidden under it)."""
    check_margins(photo.size, margins)
    choice = choice or unmeasured(classical.EDGE_COLOUR.name)
    rgb = np.asarray(photo.convert("RGB"))
    start, hole = canvas(rgb, margins)
    if choice["method"] == "model":
        if inpainter is None:
            raise ValueError("the choice is the model but no inpainter was given")
        out = inpainter.repair(Image.fromarray(start), Image.fromarray((hole * 255).astype(np.uint8)))
    else:
        out = Image.fromarray(classical.named(choice["tool"], classical.EXPAND_FILLS).apply(start, hole))
    if has_alpha(photo):
        left, top, right, bottom = margins
        alpha = np.asarray(photo.convert("RGBA").getchannel("A"))
        out.putalpha(Image.fromarray(np.pad(alpha, ((top, bottom), (left, right)), mode="edge")))
    return out
