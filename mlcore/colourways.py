"""Colourways: the product of a photo in another colour, recoloured inside its matte; the backdrop untouched.

In CIELAB, inside the soft matte (``scenes.matte``): the lightness is moved so that the product's median
lightness becomes the target's, every pixel by the same amount (the shading and the texture, which are
differences of lightness, are kept), compressed toward the median only as far as needed to stay in 0-100,
on each side of the median separately;
the colour (a*, b*) becomes the target's plus the product's own variation around its mean (a print or a
weave stays visible), its chroma scaled down where the new lightness nears black or white, as real dyes do
(highlights stay white, deep folds stay dark). Pixels outside the matte keep their exact bytes.

``hue_shift`` is the classical tool it is measured against: the hue rotated to the target's in HSV,
saturation and value kept.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor, to_pil_image

from .cielab import lab_to_srgb, srgb_to_lab
from .conditioning.colour import colour_rgb as target_rgb
from .photos import to_float, to_uint8

# Lightness percentiles whose distance from the median must fit in the target's room to 0 and 100.
SPREAD_PERCENTILES = (0.02, 0.98)
# Chroma falls to zero over this many L* units next to 0 and 100.
CHROMA_ROOM = 25.0


def _lab_of(rgb: tuple[int, int, int]) -> torch.Tensor:
    return srgb_to_lab(torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1) / 255.0).view(3)


def _weighted_quantile(values: torch.Tensor, weights: torch.Tensor, q: float) -> float:
    order = torch.argsort(values)
    cumulative = torch.cumsum(weights[order], 0)
    index = int(torch.searchsorted(cumulative, q * cumulative[-1]).clamp(max=len(values) - 1))
    return float(values[order][index])


def product_colour(lab: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """The product's dominant colour: the alpha-weighted median of L*, a* and b* over the matte (3,)."""
    weights = alpha.flatten()
    keep = weights > 0.5
    return torch.tensor([_weighted_quantile(lab[c].flatten()[keep], weights[keep], 0.5) for c in range(3)])


def recolour(photo: Image.Image, matte: Image.Image, colour: str) -> Image.Image:
    """``photo`` (RGB) with the product under ``matte`` ("L", 255 = product, the photo's size) in ``colour``."""
    rgb = photo.convert("RGB")
    if matte.size != rgb.size:
        raise ValueError(f"the matte is {matte.size}, the photo {rgb.size}")
    alpha = to_float(pil_to_tensor(matte.convert("L")))[0]
    if float(alpha.max()) < 0.5:
        raise ValueError("the matte holds no product")
    original = pil_to_tensor(rgb)
    lab = srgb_to_lab(to_float(original))
    target = _lab_of(target_rgb(colour))
    median = product_colour(lab, alpha)
    inside = alpha.flatten() > 0.5
    weights = alpha.flatten()[inside]
    lightness = lab[0].flatten()[inside]
    low, high = (_weighted_quantile(lightness, weights, q) - float(median[0]) for q in SPREAD_PERCENTILES)
    # Below and above the median, the largest gain <= 1 that keeps that side of the spread inside 0-100: a
    # white colourway keeps its folds' full depth and only its highlights are compressed (one gain for both
    # sides flattened every white and black colourway).
    shift = lab[0] - median[0]
    gain_below = min(1.0, float(target[0]) / max(-low, 1e-3))
    gain_above = min(1.0, (100.0 - float(target[0])) / max(high, 1e-3))
    new_l = (target[0] + shift * torch.where(shift < 0, gain_below, gain_above)).clamp(0.0, 100.0)
    mean_ab = torch.stack([(lab[c] * alpha).sum() / alpha.sum() for c in (1, 2)]).view(2, 1, 1)
    room = (torch.minimum(new_l, 100.0 - new_l) / CHROMA_ROOM).clamp(0.0, 1.0)
    target_room = min(1.0, min(float(target[0]), 100.0 - float(target[0])) / CHROMA_ROOM)
    # The target's own chroma is where its lightness puts it: scale relative to that, not to full chroma.
    scale = (room / max(target_room, 1e-3)).clamp(max=1.0)
    new_ab = (target[1:].view(2, 1, 1) + (lab[1:] - mean_ab)) * scale
    changed = to_uint8(lab_to_srgb(torch.cat([new_l.unsqueeze(0), new_ab])))
    blended = (alpha * changed.float() + (1 - alpha) * original.float()).round().clamp(0, 255).to(torch.uint8)
    out = torch.where(alpha > 0, blended, original)
    return to_pil_image(out)


def hue_shift(photo: Image.Image, matte: Image.Image, colour: str) -> Image.Image:
    """The classical recolouring: the hue inside the matte turned to the target's (HSV), blended by the matte."""
    rgb = photo.convert("RGB")
    hsv = np.asarray(rgb.convert("HSV")).copy()
    target_hue = np.asarray(Image.new("RGB", (1, 1), target_rgb(colour)).convert("HSV"))[0, 0, 0]
    hsv[..., 0] = target_hue
    shifted = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), dtype=np.float32)
    alpha = np.asarray(matte.convert("L"), dtype=np.float32)[..., None] / 255.0
    original = np.asarray(rgb, dtype=np.float32)
    out = np.where(alpha > 0, alpha * shifted + (1 - alpha) * original, original)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
