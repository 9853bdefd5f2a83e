"""Put a cut-out product on a new background, centred and sized to marketplace rules.

    on_background(image, mask, background="white", fill=0.85, canvas=(1600, 1600))

- ``background``: "white" (pure #FFFFFF), an (r, g, b) brand colour or "#rrggbb", a PIL image (a
  generated or supplied backdrop, scaled to cover the canvas and centre-cropped), or "transparent"
  (an RGBA cut-out).
- ``fill``: the product's bounding box (pixels whose mask is above zero) fills this share of the
  canvas along the side that limits it: on a square canvas, ``fill`` of the side is the box's longer
  side. Centred to the nearest pixel.
- ``canvas``: (width, height). ``None``: a square just big enough for ``fill`` at the photo's own
  scale, so no pixel is resampled and the product's pixels are the photo's pixels.

Guarantees. Where the placed mask is 0 the output is exactly the background (every pixel of a white
background #FFFFFF), because colours are kept premultiplied by alpha and resampled with a filter that
has no negative lobes, so nothing rings out of the product into the background; where the mask is
255 and nothing was resampled, the output is exactly the photo's pixel.

Shadow. Marketplaces (Amazon's main image, for one) demand a pure white background, so there is no
shadow unless the caller asks: ``shadow=True`` or ``shadow=Shadow(...)``. A shadow darkens the
background near the product, so the background is then not pure there; every pixel outside the
shadow's reach is still exact. The result says which it is: ``image.info["pure_background"]`` is
True when every pixel outside the product equals the background.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torchvision.transforms.functional import gaussian_blur

from .images import mask_from_image, prepare, to_tensor

WHITE = (255, 255, 255)
DEFAULT_FILL = 0.85
PURE_BACKGROUND_KEY = "pure_background"
_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")
# Resampling looks this many source pixels beyond the product's box, so its soft edge is not cut.
_MARGIN = 2

# A callable draws the background itself, as float 3 x height x width in [0, 1], once the canvas is known.
Background = str | tuple[int, int, int] | Image.Image | Callable[[int, int], torch.Tensor]


@dataclass(frozen=True)
class Shadow:
    """A soft drop shadow cast on the background by the product's mask.

    ``offset`` (x, y) and ``blur`` (Gaussian sigma) are shares of the canvas's shorter side; ``opacity``
    is how much the shadow darkens the background at its darkest (0..1). The default falls slightly
    below the product, as under a softbox."""

    offset: tuple[float, float] = (0.0, 0.015)
    blur: float = 0.015
    opacity: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.opacity <= 1.0:
            raise ValueError(f"shadow opacity must be in [0, 1], got {self.opacity}")
        if not 0.0 <= self.blur <= 0.5:
            raise ValueError(f"shadow blur must be in [0, 0.5] of the canvas, got {self.blur}")
        if len(self.offset) != 2 or not all(abs(v) <= 0.5 for v in self.offset):
            raise ValueError(f"shadow offset must be (x, y) within +-0.5 of the canvas, got {self.offset}")


@dataclass
class Placement:
    """The product on the canvas: ``colour`` premultiplied by alpha (float 3 x H x W, 0..255, exactly 0
    where ``alpha`` is), ``alpha`` (uint8 H x W), ``box`` (left, top, right, bottom) of alpha > 0,
    and the ``scale`` from photo to canvas pixels."""

    colour: torch.Tensor
    alpha: torch.Tensor
    box: tuple[int, int, int, int]
    scale: float


def _box(alpha: torch.Tensor) -> tuple[int, int, int, int]:
    rows = torch.nonzero(alpha.amax(dim=1) > 0).flatten()
    cols = torch.nonzero(alpha.amax(dim=0) > 0).flatten()
    if len(rows) == 0:
        raise ValueError("the mask is empty (all zero): there is no product to place")
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _check_fill(fill: float) -> float:
    if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not 0.0 < fill <= 1.0:
        raise ValueError(f"fill must be a number in (0, 1], got {fill!r}")
    return float(fill)


def _check_canvas(canvas: tuple[int, int] | None) -> tuple[int, int] | None:
    if canvas is None:
        return None
    try:
        width, height = canvas
    except (TypeError, ValueError):
        raise ValueError(f"canvas must be (width, height), got {canvas!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 20000 for v in (width, height)):
        raise ValueError(f"canvas must be two ints in 1..20000, got {canvas!r}")
    return width, height


def _inputs(image: Image.Image, mask: Image.Image | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 3 x H x W, float H x W alpha in [0, 1]) of the upright image and its mask."""
    rgb, own_alpha = prepare(image)
    if mask is not None:
        alpha = mask_from_image(mask, rgb.size)
    elif own_alpha is not None:
        alpha = to_tensor(own_alpha)[0].float() / 255.0
    else:
        raise ValueError("no mask: pass one (e.g. Segmenter.mask(image)) or an image with transparency")
    return to_tensor(rgb), alpha


def place(
    image: Image.Image,
    mask: Image.Image | None = None,
    *,
    fill: float = DEFAULT_FILL,
    canvas: tuple[int, int] | None = None,
) -> Placement:
    """The product of ``image`` (masked by ``mask``, else by the image's own alpha) scaled and centred
    on the canvas as ``on_background`` places it."""
    fill, canvas = _check_fill(fill), _check_canvas(canvas)
    rgb, alpha = _inputs(image, mask)
    alpha = (alpha * 255.0).round() / 255.0  # the mask as 8-bit levels, as the caller's "L" image holds it
    left, top, right, bottom = _box(alpha)
    box_w, box_h = right - left, bottom - top
    if canvas is None:
        side = math.ceil(max(box_w, box_h) / fill - 1e-9)
        canvas, scale = (side, side), 1.0
    else:
        scale = fill * min(canvas[0] / box_w, canvas[1] / box_h)
    width, height = canvas
    premultiplied = torch.cat((rgb.float() * alpha, alpha[None] * 255.0))
    if scale == 1.0:
        crop = premultiplied[:, top:bottom, left:right]
        x0, y0 = (width - box_w) // 2, (height - box_h) // 2
    else:
        # A margin of zeros around the box keeps the soft edge whole through the resampling filter.
        padded = F.pad(premultiplied, (_MARGIN,) * 4)[:, top : bottom + 2 * _MARGIN, left : right + 2 * _MARGIN]
        size = (max(1, round(padded.shape[1] * scale)), max(1, round(padded.shape[2] * scale)))
        # Bilinear with antialiasing is a triangle filter: no negative weights, so no ringing, and a
        # pixel is 0 wherever all the source pixels it covers are 0.
        crop = F.interpolate(padded[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        sx, sy = size[1] / padded.shape[2], size[0] / padded.shape[1]
        x0 = round(width / 2 - (_MARGIN + box_w / 2) * sx)
        y0 = round(height / 2 - (_MARGIN + box_h / 2) * sy)
    layer = torch.zeros(4, height, width)
    # Paste the crop where it overlaps the canvas (only its zero margin can fall outside).
    cx0, cy0 = max(0, -x0), max(0, -y0)
    cx1, cy1 = min(crop.shape[2], width - x0), min(crop.shape[1], height - y0)
    layer[:, y0 + cy0 : y0 + cy1, x0 + cx0 : x0 + cx1] = crop[:, cy0:cy1, cx0:cx1]
    alpha8 = layer[3].round().clamp(0, 255).to(torch.uint8)
    # Premultiplied colour can never exceed alpha (the colour is at most 255); where the 8-bit alpha
    # is 0 there must be no colour at all, or the background would not be exact there.
    colour = torch.minimum(layer[:3].clamp_min(0), alpha8.float()[None])
    return Placement(colour=colour, alpha=alpha8, box=_box(alpha8.float()), scale=scale)


def _background(background: Background, width: int, height: int) -> torch.Tensor:
    """The background as float 3 x H x W holding integer values 0..255."""
    if callable(background):
        drawn = background(height, width)
        if tuple(drawn.shape) != (3, height, width):
            raise ValueError(f"a background callable must return 3 x {height} x {width}, got {tuple(drawn.shape)}")
        return (drawn.float().clamp(0, 1) * 255.0).round()
    if isinstance(background, Image.Image):
        rgb, _ = prepare(background)
        fitted = ImageOps.fit(rgb, (width, height), method=Image.Resampling.LANCZOS)
        return to_tensor(fitted).float()
    if isinstance(background, str):
        if background == "white":
            background = WHITE
        elif _HEX.match(background):
            value = int(background[1:], 16)
            background = (value >> 16, (value >> 8) & 255, value & 255)
        else:
            raise ValueError(
                f"background must be 'white', 'transparent', '#rrggbb', (r, g, b) or an image; got {background!r}"
            )
    if (
        not isinstance(background, (tuple, list))
        or len(background) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in background)
    ):
        raise ValueError(f"a background colour must be three ints in 0..255, got {background!r}")
    return torch.tensor(background, dtype=torch.float32)[:, None, None].expand(3, height, width)


def _shadow_darkening(alpha: torch.Tensor, shadow: Shadow) -> torch.Tensor:
    """uint8 H x W: how much the shadow darkens each background pixel, in 1/255ths (0 = not at all)."""
    height, width = alpha.shape
    side = min(height, width)
    dx, dy = round(shadow.offset[0] * side), round(shadow.offset[1] * side)
    shifted = torch.zeros(height, width)
    src = alpha.float() / 255.0
    shifted[max(0, dy) : height + min(0, dy), max(0, dx) : width + min(0, dx)] = src[
        max(0, -dy) : height - max(0, dy), max(0, -dx) : width - max(0, dx)
    ]
    sigma = shadow.blur * side
    if sigma > 0:
        kernel = 2 * math.ceil(3 * sigma) + 1
        shifted = gaussian_blur(shifted[None, None], [kernel, kernel], [sigma, sigma])[0, 0]
    # Quantised to 8 bits: far from the product the blurred tail rounds to exactly 0, so the
    # background there stays exact.
    return (shifted * shadow.opacity * 255.0).round().clamp(0, 255).to(torch.uint8)


def on_background(
    image: Image.Image,
    mask: Image.Image | None = None,
    *,
    background: Background = "white",
    fill: float = DEFAULT_FILL,
    canvas: tuple[int, int] | None = None,
    shadow: bool | Shadow = False,
) -> Image.Image:
    """The product of ``image`` on ``background``, centred, its box filling ``fill`` of the canvas.

    ``mask``: mode "L" (or "1", or an image whose alpha is used), the size of the upright image; when
    ``None`` the image's own transparency is the mask. Returns an RGB image, or RGBA for
    ``background="transparent"``, with ``info["pure_background"]`` set (see the module docstring).
    ``ValueError`` names the argument that is wrong."""
    shadow = Shadow() if shadow is True else (shadow or None)
    if shadow is not None and not isinstance(shadow, Shadow):
        raise ValueError(f"shadow must be True, False or a Shadow, got {shadow!r}")
    placed = place(image, mask, fill=fill, canvas=canvas)
    alpha = placed.alpha.float()[None]
    height, width = placed.alpha.shape
    if isinstance(background, str) and background == "transparent":
        if shadow is not None:
            raise ValueError("a shadow needs a background to fall on; it cannot go with background='transparent'")
        straight = torch.where(alpha > 0, placed.colour * 255.0 / alpha.clamp_min(1.0), torch.zeros_like(placed.colour))
        pixels = torch.cat((straight.round().clamp(0, 255), alpha)).to(torch.uint8)
        result = Image.frombytes("RGBA", (width, height), pixels.permute(1, 2, 0).contiguous().numpy().tobytes())
        result.info[PURE_BACKGROUND_KEY] = True
        return result
    base = _background(background, width, height)
    pure = True
    if shadow is not None:
        darkening = _shadow_darkening(placed.alpha, shadow)
        # Pure means: every pixel the product does not touch (mask 0) is exactly the background.
        pure = not bool(((darkening > 0) & (placed.alpha == 0)).any())
        base = (base * (255 - darkening.float()) / 255.0).round()
    out = placed.colour + (1.0 - alpha / 255.0) * base
    pixels = out.round().clamp(0, 255).to(torch.uint8)
    result = Image.frombytes("RGB", (width, height), pixels.permute(1, 2, 0).contiguous().numpy().tobytes())
    result.info[PURE_BACKGROUND_KEY] = pure
    return result
