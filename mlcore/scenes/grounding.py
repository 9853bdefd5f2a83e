"""Where a placed product meets the floor: the row its body ends on, and, for a product made of
separate pieces (a pair of shoes, earrings), where each piece stands.

A pair of shoes shot from above has one shoe higher in the frame than the other. Standing the pair on
one floor line grounds the lower shoe and leaves the other hanging in the air, its shadow a hand's
width below it. Read as a scene, a piece higher in the frame stands further back on the floor, so
each large piece gets its own floor line at its own base, and casts its own contact and cast shadows
from there.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..background import morphology

# The product stands on its lowest row where at least this share of its box's width (and 2 px) is at
# least half opaque: a stray thread, a speck of dust or the faint rim of a soft edge below that row
# would otherwise lift the whole product off the floor (seen on real photos: a visible gap above the
# contact shadow).
BASE_SHARE = 0.02
# Pieces are found on a copy at most this large (long side); a piece counts when it has at least
# this share of the largest piece's area (a shoe's lace tip or a tag is not a piece).
PIECE_SIDE = 256
PIECE_SHARE = 0.15


def product_box(alpha: torch.Tensor) -> tuple[int, int, int, int] | None:
    rows = torch.nonzero(alpha.amax(dim=1) > 0).flatten()
    if len(rows) == 0:
        return None
    cols = torch.nonzero(alpha.amax(dim=0) > 0).flatten()
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def standing_row(alpha: torch.Tensor, box: tuple[int, int, int, int] | None = None) -> int:
    """The row just below the body of float H x W ``alpha`` (see ``BASE_SHARE``): where it meets the
    floor. The bottom of its alpha > 0 box when no row is solid enough; 0 when alpha is all zero."""
    box = box if box is not None else product_box(alpha)
    if box is None:
        return 0
    left, top, right, bottom = box
    need = max(2, math.ceil(BASE_SHARE * (right - left)))
    rows = torch.nonzero((alpha[top:bottom, left:right] >= 0.5).sum(dim=1) >= need).flatten()
    return top + int(rows[-1]) + 1 if len(rows) else bottom


def grounded_parts(alpha: torch.Tensor, floor_y: int) -> list[tuple[torch.Tensor, int]]:
    """[(alpha of one piece, the row it stands on), ...] for float H x W ``alpha`` placed on the floor
    line ``floor_y``: one entry (alpha, floor_y) for a product in one piece; for several large pieces
    each with its own base, the lowest standing on ``floor_y``. Every pixel of ``alpha`` belongs to
    exactly one piece (faint pixels to the nearest, else the largest), so the pieces add up to it."""
    height, width = alpha.shape
    factor = max(1.0, max(height, width) / PIECE_SIDE)
    small_size = (max(1, round(height / factor)), max(1, round(width / factor)))
    small = F.interpolate(alpha[None, None], size=small_size, mode="area")[0, 0] >= 0.5
    if not bool(small.any()):
        return [(alpha, floor_y)]
    labels = morphology.label_components(small)
    areas = morphology.component_areas(labels)
    largest = max(areas.values())
    pieces = sorted((area, label) for label, area in areas.items() if area >= PIECE_SHARE * largest)
    if len(pieces) < 2:
        return [(alpha, floor_y)]
    remaining = alpha > 0
    parts = []
    # Largest first, so that faint pixels between pieces go to the bigger one.
    for _, label in reversed(pieces):
        near = morphology.resize_nearest(morphology.dilate(labels == label, 2), height, width) & remaining
        remaining &= ~near
        parts.append(torch.where(near, alpha, torch.zeros_like(alpha)))
    parts[0] = parts[0] + torch.where(remaining, alpha, torch.zeros_like(alpha))
    bases = [standing_row(part) for part in parts]
    # The lowest piece stands on the placement's floor line (to the pixel); the others on their own.
    lowest = max(bases)
    return [(part, floor_y if base == lowest else min(base, floor_y)) for part, base in zip(parts, bases)]
