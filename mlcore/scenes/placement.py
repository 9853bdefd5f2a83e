"""Stand the cut-out product on the scene's floor line: scaled per the layout, its box's bottom edge
on the floor, centred on the layout's ``x``.

Colour is carried premultiplied by alpha and resampled with antialiased bilinear (a triangle filter,
no negative lobes), as ``background.compose.place`` does: nothing rings out of the product, and
every canvas pixel whose sources all have alpha 0 gets exactly alpha 0 and colour 0. At scale 1.0
nothing is resampled and the offsets are whole pixels, so the product's pixels are the photo's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image

from ..background.images import mask_from_image, prepare, to_tensor
from .grounding import standing_row
from .layout import DEFAULT_MIN_LONG_SIDE, Layout, plan_canvas

# Source pixels of zeros kept around the box while resampling, so its soft edge is not cut.
_MARGIN = 2


@dataclass
class FloorPlacement:
    """The product on the canvas.

    ``colour``: premultiplied float 3 x H x W in 0..255 (0 where ``alpha`` is). ``alpha``: uint8 H x W.
    ``box``: (left, top, right, bottom) of alpha > 0. ``scale``: photo to canvas pixels. ``floor_y``:
    the floor line, the first canvas row below the product's body (``standing_row``); only the faint
    rim of its soft edge, or a stray thread, hangs below it. ``moved``: None,
    or why the product is not where the layout asked (it would have stuck out of the canvas)."""

    colour: torch.Tensor
    alpha: torch.Tensor
    box: tuple[int, int, int, int]
    scale: float
    floor_y: int
    moved: str | None

    @property
    def canvas(self) -> tuple[int, int]:
        """(width, height)."""
        return self.alpha.shape[1], self.alpha.shape[0]


def alpha_box(alpha: torch.Tensor) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the pixels of H x W ``alpha`` above 0; ValueError when none are."""
    rows = torch.nonzero(alpha.amax(dim=1) > 0).flatten()
    if len(rows) == 0:
        raise ValueError("the matte is empty (all zero): there is no product to place")
    cols = torch.nonzero(alpha.amax(dim=0) > 0).flatten()
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def read_inputs(photo: Image.Image, matte: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 3 x H x W photo, float H x W alpha in 8-bit steps) of the upright photo and its matte
    ("L", the photo's size, e.g. ``soft_matte``'s)."""
    rgb, _ = prepare(photo)
    alpha = mask_from_image(matte, rgb.size)
    return to_tensor(rgb), (alpha * 255.0).round() / 255.0


def _clamp(start: int, length: int, limit: int) -> int:
    return min(max(start, 0), max(0, limit - length))


def place_layer(
    premultiplied: torch.Tensor,
    box: tuple[int, int, int, int],
    *,
    canvas: tuple[int, int],
    scale: float,
    x: float,
    floor: float,
    base: int | None = None,
) -> FloorPlacement:
    """Place float 4 x h x w ``premultiplied`` (colour premultiplied 0..255, then alpha 0..255) whose
    product box in source pixels is ``box``: source row ``base`` (default the box's bottom; see
    ``standing_row``) on canvas row round(floor x height), the box centred on x x width, scaled by
    ``scale``. Moved (and ``moved`` says so) where the box would leave the canvas."""
    width, height = canvas
    left, top, right, bottom = box
    base = bottom if base is None else base
    box_w, box_h = right - left, bottom - top
    target_x, target_floor = x * width, round(floor * height)
    if scale == 1.0:
        crop = premultiplied[:, top:bottom, left:right]
        inner = (0.0, 0.0)
        size_w, size_h, stand_h = float(box_w), float(box_h), float(base - top)
    else:
        padded = F.pad(premultiplied, (_MARGIN,) * 4)[:, top : bottom + 2 * _MARGIN, left : right + 2 * _MARGIN]
        size = (max(1, round(padded.shape[1] * scale)), max(1, round(padded.shape[2] * scale)))
        crop = F.interpolate(padded[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        sx, sy = size[1] / padded.shape[2], size[0] / padded.shape[1]
        inner = (_MARGIN * sx, _MARGIN * sy)
        size_w, size_h, stand_h = box_w * sx, box_h * sy, (base - top) * sy
    # Where the box (not its zero margin) lands, then nudged inside the canvas if it sticks out.
    box_x0 = round(target_x - size_w / 2)
    box_y0 = target_floor - round(stand_h)
    box_wi, box_hi = round(size_w), round(size_h)
    fit_x0, fit_y0 = _clamp(box_x0, box_wi, width), _clamp(box_y0, box_hi, height)
    moved = None
    if (fit_x0, fit_y0) != (box_x0, box_y0):
        floor_share = (fit_y0 + round(stand_h)) / height
        moved = (
            f"moved by ({fit_x0 - box_x0}, {fit_y0 - box_y0}) px to stay inside the canvas: "
            f"floor at {floor_share:.3f} of the height (asked {floor:.3f}), centre at "
            f"{(fit_x0 + box_wi / 2) / width:.3f} of the width (asked {x:.3f})"
        )
    x0, y0 = fit_x0 - round(inner[0]), fit_y0 - round(inner[1])
    layer = torch.zeros(4, height, width)
    cx0, cy0 = max(0, -x0), max(0, -y0)
    cx1, cy1 = min(crop.shape[2], width - x0), min(crop.shape[1], height - y0)
    if cx1 > cx0 and cy1 > cy0:
        layer[:, y0 + cy0 : y0 + cy1, x0 + cx0 : x0 + cx1] = crop[:, cy0:cy1, cx0:cx1]
    alpha8 = layer[3].round().clamp(0, 255).to(torch.uint8)
    # Premultiplied colour never exceeds alpha; where the 8-bit alpha is 0 there is no colour at all,
    # so the backdrop shows exactly there.
    colour = torch.minimum(layer[:3].clamp_min(0), alpha8.float()[None])
    return FloorPlacement(
        colour=colour, alpha=alpha8, box=alpha_box(alpha8), scale=scale, floor_y=fit_y0 + round(stand_h), moved=moved
    )


def place_product(
    rgb: torch.Tensor,
    alpha: torch.Tensor,
    layout: Layout,
    *,
    colour: torch.Tensor | None = None,
    min_long_side: int = DEFAULT_MIN_LONG_SIDE,
) -> FloorPlacement:
    """``place_on_floor`` on tensors: ``rgb`` uint8 3 x H x W, ``alpha`` float H x W in [0, 1],
    ``colour`` optional premultiplied float 3 x H x W in 0..255 (default rgb x alpha)."""
    if not isinstance(layout, Layout):
        raise ValueError(f"layout must be a Layout, got {type(layout).__name__}")
    box = alpha_box(alpha)
    canvas, scale = plan_canvas(layout, (rgb.shape[2], rgb.shape[1]), (box[2] - box[0], box[3] - box[1]), min_long_side)
    if colour is None:
        colour = rgb.float() * alpha
    elif tuple(colour.shape) != tuple(rgb.shape):
        raise ValueError(f"colour must be 3 x {rgb.shape[1]} x {rgb.shape[2]}, got {tuple(colour.shape)}")
    premultiplied = torch.cat((colour.float(), alpha[None] * 255.0))
    return place_layer(
        premultiplied, box, canvas=canvas, scale=scale, x=layout.x, floor=layout.floor, base=standing_row(alpha, box)
    )


def place_on_floor(
    photo: Image.Image,
    matte: Image.Image,
    layout: Layout,
    *,
    min_long_side: int = DEFAULT_MIN_LONG_SIDE,
) -> FloorPlacement:
    """The product of ``photo`` (alpha: ``matte``, "L" at the photo's size) on a canvas sized as
    ``layout.canvas_for`` says, its body's bottom (``standing_row``) on the layout's floor line, centred on its ``x``,
    filling ``layout.fill`` of the limiting side. The colour is the photo's, premultiplied."""
    rgb, alpha = read_inputs(photo, matte)
    return place_product(rgb, alpha, layout, min_long_side=min_long_side)
