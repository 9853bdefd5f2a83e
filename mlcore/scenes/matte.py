"""A soft alpha matte from a hard (or low-resolution) segmentation mask, and the product's own colour
along its soft edge.

A segmenter's mask is a stair-step at the photo's resolution, or smoother but off by a pixel or two
when it comes from a low-resolution network. Pasted on a new backdrop either way, fabric fuzz and hair
end in a hard cut line. ``soft_matte`` re-solves the edge with the guided filter (``background.refine``)
against the photo's own brightness, but only in a narrow band around the mask's outline: well inside
the product the alpha is exactly 255 and well outside exactly 0, so the cut-out can never grow
faint patches or lose its body.

An edge pixel is a mix of product and old backdrop (I = a F + (1 - a) B). Pasting it as is drags a
rim of the old backdrop's colour onto the new one (a light halo around a garment shot on white).
``premultiplied_foreground`` removes the old backdrop's share, estimated locally from the nearby
pixels the matte calls backdrop.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from PIL import Image

from ..background.images import mask_to_image, prepare, to_tensor, upright
from ..background.refine import box_mean, fast_guided_filter, luminance

# The edge band is at least this wide (pixels, each side of the mask's outline) and grows with the
# photo (0.3% of its long side: 4 px at 1365) and with how much the mask was upsampled.
MIN_BAND = 4
BAND_SHARE = 0.004
# Guided filter regulariser: a brightness step of about 0.05 (of 1) across the window is followed;
# flatter windows get a smooth ramp of the mask instead. Smaller than the segmenter's 1e-2 because
# here the window is only the band's width and the mask's position is already right to a pixel or two.
MATTE_EPS = 2.5e-3
# The mask's aspect may differ from the photo's by rounding only (a network's 192 px square would not).
_ASPECT_TOLERANCE = 0.02


def _mask_tensor(mask: Image.Image, size: tuple[int, int]) -> tuple[torch.Tensor, float]:
    """(float H x W in [0, 1] at ``size``, how many photo pixels one mask pixel spans)."""
    if not isinstance(mask, Image.Image):
        raise ValueError(f"mask must be a PIL image, got {type(mask).__name__}")
    mask = upright(mask)
    if mask.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        mask = mask.convert("RGBA").getchannel("A")
    elif mask.mode != "L":
        mask = mask.convert("L")
    width, height = size
    if abs(mask.width / mask.height - width / height) > _ASPECT_TOLERANCE * width / height:
        raise ValueError(
            f"mask is {mask.width} x {mask.height} but the photo is {width} x {height}: not the same aspect"
        )
    values = to_tensor(mask)[0].float() / 255.0
    if mask.size == (width, height):
        return values, 1.0
    # Bilinear (not nearest): a soft low-resolution mask keeps its sub-pixel edge position.
    up = F.interpolate(values[None, None], size=(height, width), mode="bilinear", antialias=True, align_corners=False)
    return up[0, 0].clamp(0.0, 1.0), width / mask.width


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """``morphology.dilate`` (square window) by counting: a pixel is set when its window holds any set
    pixel. Box sums by cumulative sums cost the same for any radius; max pooling with a 9 px window
    took 0.25 s on a 1.4 MP photo, this takes a few hundredths."""
    count = box_mean(mask.float(), radius)
    # The mean of a window holding one set pixel is at least 1 / (2r + 1)^2; half of it is a safe cut.
    return count > 0.5 / (2 * radius + 1) ** 2


def band_radius(size: tuple[int, int], upsampled: float = 1.0) -> int:
    """Half-width in pixels of the band around the mask's outline where the matte is re-solved."""
    return max(MIN_BAND, math.ceil(1.5 * upsampled), round(BAND_SHARE * max(size)))


def _bounds(band: torch.Tensor, margin: int) -> tuple[int, int, int, int] | None:
    rows = torch.nonzero(band.any(dim=1)).flatten()
    if len(rows) == 0:
        return None
    cols = torch.nonzero(band.any(dim=0)).flatten()
    height, width = band.shape
    return (
        max(0, int(cols[0]) - margin), max(0, int(rows[0]) - margin),
        min(width, int(cols[-1]) + 1 + margin), min(height, int(rows[-1]) + 1 + margin),
    )


def soft_matte(photo: Image.Image, mask: Image.Image) -> Image.Image:
    """A soft alpha matte (mode "L", 255 = product) at the upright ``photo``'s resolution.

    ``mask``: mode "L" (any values; above 127 counts as product) or an image whose alpha is the mask,
    at the photo's size or smaller with the same aspect (a network's mask). Within ``band_radius``
    pixels of the mask's outline the alpha follows the photo's own edges (guided filter), so
    blurred or fuzzy edges keep partial alpha; farther inside it is exactly 255, farther outside 0."""
    rgb, _ = prepare(photo)
    values, upsampled = _mask_tensor(mask, rgb.size)
    core = values >= 0.5
    radius = band_radius(rgb.size, upsampled)
    # Erosion as the dilation of the complement: outside the frame counts as product, so a product
    # cut by the photo's edge is not eaten from there (as ``morphology.erode``).
    inside = ~_dilate(~core, radius)
    outside = ~_dilate(core, radius)
    alpha = core.float()
    band = ~(inside | outside)
    # The guided filter only runs on the rectangle around the band (its window needs `radius` more).
    # The filter's window is wider than the band: windows that also hold flat product and flat
    # backdrop fit the brightness-to-alpha line better (measured on a blurred synthetic edge: mean
    # error 3.5 -> 2.7 levels of 255 going from 1x to 1.5x).
    window = radius + radius // 2
    bounds = _bounds(band, 2 * window)
    if bounds is not None:
        left, top, right, bottom = bounds
        crop = to_tensor(rgb.crop(bounds))
        # Coefficients at half resolution on large photos: they vary slowly, and it halves the cost.
        subsample = 2 if window >= 6 else 1
        solved = fast_guided_filter(luminance(crop), values[top:bottom, left:right], window, MATTE_EPS, subsample)
        alpha[top:bottom, left:right] = solved.clamp(0.0, 1.0)
    alpha = torch.where(inside, 1.0, torch.where(outside, 0.0, alpha))
    return mask_to_image(alpha)


def premultiplied_foreground(rgb: torch.Tensor, alpha: torch.Tensor, radius: int | None = None) -> torch.Tensor:
    """The product's colour premultiplied by its alpha, a F = I - (1 - a) B, as float 3 x H x W in
    0..255, with the old backdrop B estimated at each edge pixel as the mean of the photo over the
    matte's exact-zero pixels within about ``radius`` (default: 3 x ``band_radius``).

    ``rgb`` uint8 3 x H x W, ``alpha`` float H x W in [0, 1]. Exact where it must be: 0 where alpha
    is 0 and the photo's pixel where alpha is 1. Clamped to [0, 255 a] so it is a valid premultiplied
    colour. Where no backdrop pixel is near (a hole the matte does not open), the photo's colour is kept."""
    height, width = alpha.shape
    image = rgb.float()
    out = image * alpha[None]
    ys, xs = torch.nonzero((alpha > 0) & (alpha < 1), as_tuple=True)
    if len(ys) == 0:
        return out
    radius = radius if radius is not None else 3 * band_radius((width, height))
    clear = (alpha == 0).float()
    # The backdrop is smooth next to the product: its local mean is taken on a copy `factor` times
    # smaller (area averages, then box means) and read, bilinearly, at the edge pixels only.
    factor = max(1, radius // 4)
    size = (math.ceil(height / factor), math.ceil(width / factor))
    stack = F.interpolate(torch.cat((image * clear, clear[None]))[None], size=size, mode="area")[0]
    small_radius = max(1, round(radius / factor))
    stack = torch.stack([box_mean(channel, small_radius) for channel in stack])
    grid = torch.stack(((xs.float() + 0.5) / width * 2 - 1, (ys.float() + 0.5) / height * 2 - 1), dim=-1)
    at_edge = F.grid_sample(
        stack[None], grid[None, None], mode="bilinear", padding_mode="border", align_corners=False
    )[0, :, 0]
    sums, share = at_edge[:3], at_edge[3]
    observed, a = image[:, ys, xs], alpha[ys, xs]
    near = share > 1e-3
    backdrop = torch.where(near, sums / share.clamp_min(1e-3), observed)
    unmixed = torch.minimum((observed - (1.0 - a) * backdrop).clamp_min(0.0), 255.0 * a)
    out[:, ys, xs] = torch.where(near, unmixed, observed * a)
    return out
