"""A shop's photos (PIL images) as the harmonisation trainer's data (the registry's ``prepare``), and the
product masks they are trained with.

Training needs no labels, only a region of each real photo to perturb and restore (``objective``), and a real
photo's product and backdrop are in harmony by definition. The region is the product's mask where one can be
had without a trained model, in this order of preference (``product_alpha``):

1. "alpha": the photo's own transparency (an already cut-out product; its backdrop is then white);
2. "border": the classical border model (``mlcore.background.classical``) where it is confident;
3. "border-unsure": the border model's mask where it is not confident but the mask is plausible (it covers
   ``PLAUSIBLE_SHARE`` of the photo): on a textured backdrop it is often the garment plus some backdrop, which
   still teaches the task (restore a region's colours from its surroundings), and it has a product's
   outline, which a fixed shape has not;
4. "ellipse": a centred ellipse over ``ELLIPSE_SHARE`` of the photo (catalogue photos centre the product),
   so no readable photo is wasted.

Photos and masks are stored squeezed to the config's ``size`` square as uint8 (training is then cheap: one
small batch per step, no decoding), squeezed exactly as the sampler squeezes a composite for the network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

from ..background.classical import border_matte
from ..background.images import mask_to_image, prepare, to_tensor
from .config import HarmoniseConfig

# Smaller photos carry too little to learn from (and the border model needs a few pixels of border).
MIN_SIDE = 16
# A photo whose grey levels spread less than this (std, 0..255) is blank: nothing to harmonise.
MIN_SPREAD = 2.0
# The border model is run on a copy of at most this long side (it works at 256 px anyway; a smaller input
# makes its full-resolution edge step cheap).
MASK_SIDE = 256
# A not-confident border mask is used when its product covers this share of the photo.
PLAUSIBLE_SHARE = (0.04, 0.8)
# Semi-axes of the fallback ellipse as shares of the width and height (it covers pi * 0.3 * 0.4 = 38%).
ELLIPSE_AXES = (0.3, 0.4)
ELLIPSE_SHARE = math.pi * ELLIPSE_AXES[0] * ELLIPSE_AXES[1]
SOURCES = ("alpha", "border", "border-unsure", "ellipse")


def squeeze(x: torch.Tensor, size: int) -> torch.Tensor:
    """N x C x H x W floats resized to N x C x size x size (aspect not kept: colour statistics do not care),
    antialiased so that shrinking averages like a box filter."""
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def ellipse(height: int, width: int) -> torch.Tensor:
    """The fallback region: a centred ellipse, float H x W in [0, 1] with a one-pixel soft edge."""
    y = (torch.arange(height, dtype=torch.float32) + 0.5 - height / 2) / (ELLIPSE_AXES[1] * height)
    x = (torch.arange(width, dtype=torch.float32) + 0.5 - width / 2) / (ELLIPSE_AXES[0] * width)
    radius = (y[:, None] ** 2 + x[None, :] ** 2).sqrt()
    edge = 1.0 / max(1.0, ELLIPSE_AXES[0] * min(height, width))
    return ((1.0 - radius) / edge + 0.5).clamp(0.0, 1.0)


def product_alpha(rgb: Image.Image) -> tuple[torch.Tensor, str]:
    """(float H x W alpha of the product in the upright RGB photo ``rgb``, its source: "border",
    "border-unsure" or "ellipse"); see the module docstring."""
    scale = min(1.0, MASK_SIDE / max(rgb.size))
    small = rgb if scale == 1.0 else rgb.resize(
        (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale))), Image.Resampling.BOX
    )
    source = "ellipse"
    alpha = None
    if min(small.size) >= MIN_SIDE:
        matte = border_matte(small)
        share = float((matte.alpha > 0.5).float().mean())
        if matte.confident:
            alpha, source = matte.alpha, "border"
        elif PLAUSIBLE_SHARE[0] <= share <= PLAUSIBLE_SHARE[1]:
            alpha, source = matte.alpha, "border-unsure"
    if alpha is None:
        return ellipse(rgb.height, rgb.width), source
    if alpha.shape != (rgb.height, rgb.width):
        alpha = F.interpolate(alpha[None, None], size=(rgb.height, rgb.width), mode="bilinear", align_corners=False)[0, 0]
    return alpha.clamp(0.0, 1.0), source


def product_mask(photo: Image.Image) -> Image.Image:
    """The product's mask of ``photo`` (mode "L", 255 = product, the upright photo's size): its own alpha when
    it has one, else ``product_alpha``'s."""
    rgb, own = prepare(photo)
    return own if own is not None else mask_to_image(product_alpha(rgb)[0])


def photo_and_alpha(photo: Image.Image) -> tuple[torch.Tensor, torch.Tensor, str]:
    """(float 3 x H x W sRGB in [0, 1], float H x W alpha, mask source) of a PIL photo; an already cut-out
    photo is flattened on white (its backdrop). ``ValueError`` for images ``prepare`` cannot read."""
    rgb, own = prepare(photo)
    if own is not None:
        white = Image.new("RGB", rgb.size, (255, 255, 255))
        white.paste(rgb, mask=own)
        return to_tensor(white).float() / 255.0, to_tensor(own)[0].float() / 255.0, "alpha"
    alpha, source = product_alpha(rgb)
    return to_tensor(rgb).float() / 255.0, alpha, source


def unusable(photo: Image.Image) -> str | None:
    """Why ``photo`` cannot train the model (unreadable, too small, blank), or None when it can."""
    try:
        rgb, _ = prepare(photo)
    except ValueError as exc:
        return f"unreadable ({exc})"
    if min(rgb.size) < MIN_SIDE:
        return f"smaller than {MIN_SIDE} px ({rgb.width} x {rgb.height})"
    if float(to_tensor(rgb.convert("L")).float().std()) < MIN_SPREAD:
        return "blank (a single colour)"
    return None


def prepare_photos(
    photos: Sequence[Image.Image], size: int
) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """(uint8 N x 3 x size x size photos, uint8 N x 1 x size x size masks, their sources, why the others were
    left out) of the usable ``photos``."""
    images, masks, sources, skipped = [], [], [], []
    for i, photo in enumerate(photos):
        reason = unusable(photo) if isinstance(photo, Image.Image) else f"not a PIL image ({type(photo).__name__})"
        if reason is not None:
            skipped.append(f"photo {i}: {reason}")
            continue
        rgb, alpha, source = photo_and_alpha(photo)
        both = squeeze(torch.cat((rgb, alpha[None]))[None], size)[0]
        pixels = both.mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
        images.append(pixels[:3])
        masks.append(pixels[3:])
        sources.append(source)
    if not images:
        detail = "; ".join(skipped[:3]) + (" ..." if len(skipped) > 3 else "")
        raise ValueError(
            f"no photo can train the harmonisation model: it needs at least one readable photo of at least "
            f"{MIN_SIDE} x {MIN_SIDE} px that is not blank (got {len(photos)}{': ' + detail if detail else ''})"
        )
    return torch.stack(images), torch.stack(masks), sources, skipped


def training_set(
    photos: Sequence[Image.Image], **options: Any
) -> tuple[HarmoniseConfig, tuple[torch.Tensor, torch.Tensor]]:
    """(``HarmoniseConfig(**options)``, (uint8 photos N x 3 x S x S, uint8 masks N x 1 x S x S)), S the config's
    ``size``; unusable photos are left out, ``ValueError`` when none is left."""
    config = HarmoniseConfig(**options)
    images, masks, _, _ = prepare_photos(list(photos), config.size)
    return config, (images, masks)
