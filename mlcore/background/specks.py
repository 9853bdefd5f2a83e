"""Automatic detection of small defects, only where it is reliable: dust, specks and small stains on a
plain backdrop.

On a photo the border model can judge (``classical.border_matte`` is confident: a near-uniform backdrop
it explains, a stable product mask), every backdrop pixel is predictable from the fitted surface, so a
small blob that departs from it is a defect, not content. Away from the backdrop nothing is predictable:
a print, a seam or a texture on the garment looks like a scratch to any rule without labelled defects,
so the product and a margin around it (its soft edge and shadow) are never marked. Photos the border
model is not confident on are refused with its reasons, as are backdrops with more blobs than a dusty
sheet has (then the "specks" are texture).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from . import morphology
from .classical import backdrop_surface, border_matte
from .images import to_tensor
from .lab import srgb_to_lab, weighted_delta_e

# Detection runs at most this large (long side); the mask is scaled to the photo.
DETECT_SIDE = 1024
# A speck departs from the backdrop by this share of the border model's product threshold.
THRESHOLD_SHARE = 0.6
# Hysteresis: the faint region around a speck (this share of the threshold) must itself be a small compact
# blob; a blob that is the strong part of a faint line or patch (a hanger, wood grain, a crease) is left.
FAINT_SHARE = 0.4
# Size of a speck, as a share of the detection image's pixels: larger blobs are objects or shadows.
MAX_SPECK_SHARE = 0.002
MIN_SPECK_PIXELS = 3
# No speck closer to the product than this share of the shorter side (its edge, its shadow).
PRODUCT_MARGIN = 0.03
# A speck is a compact blob: its box at most this elongated and at least this full. Creases, floorboard
# seams, hanger wires and threads are lines, which repairs would wrongly erase.
MAX_ELONGATION = 2.5
MIN_BOX_FILL = 0.35
# Blobs this close to the frame are left: vignetting and the photo's edge, not dust.
FRAME_MARGIN = 4
# More blobs than this: the backdrop is textured, not dusty.
MAX_SPECKS = 60
# The repair covers each speck and this many pixels around it (its soft halo).
GROW = 2


@dataclass
class Specks:
    """``mask``: bool H x W at the photo's size (None when the photo was refused); ``count``: specks
    found; ``reason``: why the photo was refused, empty otherwise."""

    mask: torch.Tensor | None
    count: int
    reason: str = ""

    def as_image(self) -> Image.Image:
        """The mask as an "L" image (255 = repair)."""
        if self.mask is None:
            raise ValueError(f"no mask: {self.reason}")
        pixels = (self.mask.to(torch.uint8) * 255).numpy()
        return Image.fromarray(pixels, mode="L")


def _is_compact_and_inside(blob: torch.Tensor, area: int) -> bool:
    rows, cols = torch.nonzero(blob, as_tuple=True)
    top, bottom, left, right = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
    height, width = blob.shape
    if top < FRAME_MARGIN or left < FRAME_MARGIN or bottom >= height - FRAME_MARGIN or right >= width - FRAME_MARGIN:
        return False
    box_h, box_w = bottom - top + 1, right - left + 1
    return max(box_h, box_w) <= MAX_ELONGATION * min(box_h, box_w) and area >= MIN_BOX_FILL * box_h * box_w


def find_backdrop_specks(image: Image.Image) -> Specks:
    """The specks on ``image``'s plain backdrop, or the reason the photo cannot be judged."""
    rgb = image.convert("RGB")
    matte = border_matte(rgb)
    if not matte.confident:
        return Specks(None, 0, "not a plain backdrop the border model can judge: " + "; ".join(matte.reasons))
    width, height = rgb.size
    scale = min(1.0, DETECT_SIDE / max(width, height))
    work = rgb if scale == 1.0 else rgb.resize((max(8, round(width * scale)), max(8, round(height * scale))), Image.Resampling.BOX)
    lab = srgb_to_lab(to_tensor(work).float() / 255.0)
    _, work_h, work_w = lab.shape
    distance = weighted_delta_e(lab, backdrop_surface(matte.coefficients, work_h, work_w))

    product = morphology.resize_nearest(matte.alpha > 0, work_h, work_w)
    near_product = morphology.dilate(product, max(1, round(PRODUCT_MARGIN * min(work_h, work_w))))
    candidates = (distance > THRESHOLD_SHARE * matte.stats["threshold"]) & ~near_product
    labels = morphology.label_components(candidates)
    areas = morphology.component_areas(labels)
    faint = morphology.label_components((distance > FAINT_SHARE * matte.stats["threshold"]) & ~near_product)
    faint_areas = morphology.component_areas(faint)
    max_area = max(MIN_SPECK_PIXELS, round(MAX_SPECK_SHARE * work_h * work_w))
    specks = []
    for label, area in areas.items():
        if not MIN_SPECK_PIXELS <= area <= max_area or not _is_compact_and_inside(labels == label, area):
            continue
        # Every strong pixel is also faint, so the speck lies inside one faint component.
        around = int(faint[labels == label][0])
        if faint_areas[around] <= 4 * max_area and _is_compact_and_inside(faint == around, faint_areas[around]):
            specks.append(label)
    if len(areas) > MAX_SPECKS:
        return Specks(None, 0, f"{len(areas)} marks on the backdrop: a texture, not specks")
    found = torch.isin(labels, torch.tensor(specks, dtype=torch.long)) if specks else torch.zeros_like(candidates)
    found = morphology.dilate(found, GROW) & ~near_product
    if scale != 1.0:
        found = F.interpolate(found[None, None].float(), size=(height, width), mode="bilinear", align_corners=False)[0, 0] > 0
    return Specks(found, len(specks))
