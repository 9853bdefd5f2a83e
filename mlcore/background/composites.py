"""(image, mask) pairs made from the catalogue itself: products cut from photos the border model is
confident about, pasted on varied backdrops at random scale, place, tilt and light.

This is the self-supervision behind the segmentation network: the photos that are easy for the
classical model teach the network the garments; the backdrops teach it that anything else is
background. The benchmark's test composites come from the test split the same way, with their own
seed and their own photos' backgrounds.

Colours are premultiplied by alpha whenever pixels are resampled, so a cut-out's edge never drags in
the colour of what was outside it; edge pixels are also freed of the original backdrop's tint
(``decontaminate``) so a product cut from a red sheet has no red fringe on a grey floor.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision.transforms.functional import gaussian_blur

from .classical import BorderMatte, border_matte
from .images import to_tensor
from .textures import random_backdrop

# Product size: the longer side of its bounding box as a share of the canvas side it runs along.
FILL = (0.4, 0.9)
MAX_TILT_DEGREES = 6.0
# Width / height stretch of the pasted product (phone lenses, and photos squeezed to a square canvas).
MAX_STRETCH = 1.2
SHADOW_PROBABILITY = 0.3
# Cut-outs are kept at most this big: the network trains at a few hundred pixels at most.
TRAIN_CUTOUT_SIDE = 256
# Below this alpha the matting equation would divide noise by almost nothing.
MIN_DECONTAMINATE_ALPHA = 0.1
CROP_MARGIN = 2


@dataclass
class Cutout:
    """A product cut from a photo: straight (not premultiplied) colour and alpha, cropped to the product."""

    rgb: torch.Tensor  # uint8 3 x h x w
    alpha: torch.Tensor  # uint8 1 x h x w
    source: str = ""

    def rgba(self) -> torch.Tensor:
        """float 4 x h x w in [0, 1]."""
        return torch.cat((self.rgb, self.alpha)).float() / 255.0


def decontaminate(rgb: torch.Tensor, alpha: torch.Tensor, backdrop: torch.Tensor) -> torch.Tensor:
    """Foreground colour F from the matting equation I = alpha F + (1 - alpha) B, given the backdrop B.

    ``rgb`` and ``backdrop`` float 3 x H x W in [0, 1], ``alpha`` H x W. Where alpha is tiny the photo's
    own colour is kept: those pixels barely show after compositing."""
    a = alpha[None]
    solved = ((rgb - (1 - a) * backdrop) / a.clamp_min(MIN_DECONTAMINATE_ALPHA)).clamp(0, 1)
    return torch.where((a >= MIN_DECONTAMINATE_ALPHA) & (a < 1), solved, rgb)


def cutout_from_photo(
    image: Image.Image, *, max_side: int | None = None, source: str = "", matte: BorderMatte | None = None
) -> Cutout | None:
    """The product of an RGB photo as a ``Cutout``, or ``None`` when the border model is not confident.

    ``matte``: the photo's ``border_matte`` when the caller already has it."""
    matte = border_matte(image) if matte is None else matte
    if not matte.confident:
        return None
    rgb = to_tensor(image.convert("RGB")).float() / 255.0
    colour = decontaminate(rgb, matte.alpha, matte.backdrop())
    rows = torch.nonzero(matte.alpha.amax(dim=1) > 0).flatten()
    cols = torch.nonzero(matte.alpha.amax(dim=0) > 0).flatten()
    top, bottom = max(0, int(rows[0]) - CROP_MARGIN), min(rgb.shape[1], int(rows[-1]) + 1 + CROP_MARGIN)
    left, right = max(0, int(cols[0]) - CROP_MARGIN), min(rgb.shape[2], int(cols[-1]) + 1 + CROP_MARGIN)
    rgba = torch.cat((colour, matte.alpha[None]))[:, top:bottom, left:right]
    if max_side is not None and max(rgba.shape[1:]) > max_side:
        rgba = resize_rgba(rgba, max_side / max(rgba.shape[1:]))
    pixels = rgba.mul(255).round().clamp(0, 255).to(torch.uint8)
    return Cutout(rgb=pixels[:3].contiguous(), alpha=pixels[3:].contiguous(), source=source)


def resize_rgba(rgba: torch.Tensor, scale: float) -> torch.Tensor:
    """Resize straight-alpha float 4 x h x w by ``scale`` (antialiased, premultiplied while resampling)."""
    height, width = rgba.shape[1:]
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    premultiplied = torch.cat((rgba[:3] * rgba[3:], rgba[3:]))
    out = F.interpolate(premultiplied[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    alpha = out[3:].clamp(0, 1)
    colour = torch.where(alpha > 0, out[:3] / alpha.clamp_min(1e-6), torch.zeros_like(out[:3]))
    return torch.cat((colour.clamp(0, 1), alpha))


def letterbox(cutouts: list[Cutout], side: int) -> torch.Tensor:
    """Cut-outs scaled so their longer side is ``side`` and centred in a square: uint8 N x 4 x side x side
    (what the trainer keeps in memory and checkpoints never see)."""
    if not cutouts:
        raise ValueError("no cut-outs to train on")
    bank = torch.zeros(len(cutouts), 4, side, side, dtype=torch.uint8)
    for i, cutout in enumerate(cutouts):
        rgba = resize_rgba(cutout.rgba(), side / max(cutout.rgb.shape[1:]))
        height, width = rgba.shape[1:]
        top, left = (side - height) // 2, (side - width) // 2
        bank[i, :, top : top + height, left : left + width] = rgba.mul(255).round().clamp(0, 255).to(torch.uint8)
    return bank


def backdrop_patches(images: list[Image.Image], side: int, share: float = 0.3) -> torch.Tensor:
    """The top-left and bottom-right corner squares (``share`` of the shorter side) of each photo, where
    its backdrop usually is: uint8 M x 3 x side x side."""
    patches = []
    for image in images:
        rgb = to_tensor(image.convert("RGB"))
        _, height, width = rgb.shape
        crop = max(8, int(share * min(height, width)))
        for top, left in ((0, 0), (height - crop, width - crop)):
            region = rgb[None, :, top : top + crop, left : left + crop].float()
            resized = F.interpolate(region, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
            patches.append(resized[0])
    if not patches:
        return torch.zeros(0, 3, side, side, dtype=torch.uint8)
    return torch.stack(patches).round().clamp(0, 255).to(torch.uint8)


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen))


def _bbox(alpha: torch.Tensor) -> tuple[float, float, float, float]:
    """(centre x, centre y, width, height) of alpha > 0 in pixels of a 1 x h x w alpha."""
    rows = torch.nonzero(alpha[0].amax(dim=1) > 0).flatten()
    cols = torch.nonzero(alpha[0].amax(dim=0) > 0).flatten()
    if len(rows) == 0:
        raise ValueError("cut-out has an empty alpha")
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return (left + right) / 2, (top + bottom) / 2, float(right - left), float(bottom - top)


def place(
    rgba: torch.Tensor, height: int, width: int, gen: torch.Generator, fill: tuple[float, float] = FILL
) -> torch.Tensor:
    """Straight-alpha float 4 x h x w placed on a transparent ``height`` x ``width`` canvas at a random
    scale (``fill``), position (wholly inside, tilt aside), tilt, stretch and mirror: premultiplied
    float 4 x height x width."""
    centre_x, centre_y, box_w, box_h = _bbox(rgba[3:])
    stretch = math.sqrt(math.exp(_uniform(gen, -math.log(MAX_STRETCH), math.log(MAX_STRETCH))))
    scale = _uniform(gen, *fill) * min(width / (box_w * stretch), height / (box_h / stretch))
    sx, sy = scale * stretch, scale / stretch
    out_w, out_h = box_w * sx, box_h * sy
    # Resample once at the final scale with an antialiasing filter; the grid below then only
    # tilts, stretches and moves at about 1:1, where bilinear sampling does not alias.
    height_in, width_in = rgba.shape[1:]
    rgba = resize_rgba(rgba, min(sx, sy))
    in_h, in_w = rgba.shape[1:]
    fx, fy = in_w / width_in, in_h / height_in
    centre_x, centre_y = centre_x * fx, centre_y * fy
    sx, sy = sx / fx, sy / fy
    if float(torch.rand((), generator=gen)) < 0.5:
        rgba = rgba.flip(-1)
        centre_x = in_w - centre_x
    angle = math.radians(_uniform(gen, -MAX_TILT_DEGREES, MAX_TILT_DEGREES))
    target_x = _uniform(gen, -(width - out_w) / 2, (width - out_w) / 2)
    target_y = _uniform(gen, -(height - out_h) / 2, (height - out_h) / 2)
    # Output pixel d (from the canvas centre) comes from input pixel M^-1 (d - target) + box centre,
    # with M = rotation x diag(sx, sy); affine_grid wants it in normalised coordinates.
    cos, sin = math.cos(angle), math.sin(angle)
    inverse = torch.tensor([[cos / sx, sin / sx], [-sin / sy, cos / sy]])
    box_centre = torch.tensor([centre_x - in_w / 2, centre_y - in_h / 2])
    offset = box_centre - inverse @ torch.tensor([target_x, target_y])
    theta = torch.zeros(1, 2, 3)
    theta[0, 0, :2] = inverse[0] * torch.tensor([width / in_w, height / in_w])
    theta[0, 1, :2] = inverse[1] * torch.tensor([width / in_h, height / in_h])
    theta[0, 0, 2] = 2 * offset[0] / in_w
    theta[0, 1, 2] = 2 * offset[1] / in_h
    grid = F.affine_grid(theta, [1, 4, height, width], align_corners=False)
    premultiplied = torch.cat((rgba[:3] * rgba[3:], rgba[3:]))[None]
    return F.grid_sample(premultiplied, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0].clamp(0, 1)


def _drop_shadow(alpha: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """How much a soft shadow of ``alpha`` (1 x H x W) darkens the backdrop, in [0, 1)."""
    side = min(alpha.shape[1:])
    sigma = _uniform(gen, 0.01, 0.04) * side
    kernel = 2 * math.ceil(3 * sigma) + 1
    dx, dy = round(_uniform(gen, -0.03, 0.03) * side), round(_uniform(gen, 0.0, 0.04) * side)
    shifted = torch.roll(alpha, shifts=(dy, dx), dims=(1, 2))
    return _uniform(gen, 0.15, 0.45) * gaussian_blur(shifted[None], [kernel, kernel], [sigma, sigma])[0]


def composite(
    rgba: torch.Tensor,
    height: int,
    width: int,
    gen: torch.Generator,
    bank: torch.Tensor | None = None,
    fill: tuple[float, float] = FILL,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One training or test pair: the cut-out (straight-alpha float 4 x h x w) on a random backdrop.

    Returns (image float 3 x H x W in [0, 1], alpha float 1 x H x W). The product's light is varied,
    a drop shadow sometimes falls on the backdrop (it is backdrop, not product, in the mask), and the
    whole picture is sometimes blurred and always gets a little sensor noise, so the pasted product
    has no crisper edges or cleaner pixels than its surroundings to give it away."""
    gain = _uniform(gen, 0.85, 1.15)
    rgba = torch.cat(((rgba[:3] * gain).clamp(0, 1), rgba[3:]))
    placed = place(rgba, height, width, gen, fill)
    alpha = placed[3:]
    backdrop = random_backdrop(gen, height, width, bank)
    if float(torch.rand((), generator=gen)) < SHADOW_PROBABILITY:
        backdrop = backdrop * (1 - _drop_shadow(alpha, gen))
    image = placed[:3] + (1 - alpha) * backdrop
    if float(torch.rand((), generator=gen)) < 0.5:
        sigma = _uniform(gen, 0.3, 1.0)
        image = gaussian_blur(image[None], [5, 5], [sigma, sigma])[0]
    image = image + _uniform(gen, 0.0, 0.03) * torch.randn(image.shape, generator=gen)
    return image.clamp(0, 1), alpha


def composite_batch(
    cutouts: torch.Tensor, backdrops: torch.Tensor | None, gen: torch.Generator, count: int, side: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` square training pairs from a letterboxed bank (uint8 N x 4 x S x S): images float
    count x 3 x side x side in [0, 1], alphas float count x 1 x side x side."""
    images, alphas = [], []
    picks = torch.randint(len(cutouts), (count,), generator=gen)
    for index in picks:
        image, alpha = composite(cutouts[int(index)].float() / 255.0, side, side, gen, backdrops)
        images.append(image)
        alphas.append(alpha)
    return torch.stack(images), torch.stack(alphas)


@dataclass
class TrainingData:
    """What the trainer needs, made from a shop's photos: ``cutouts`` (letterboxed, uint8 N x 4 x S x S),
    ``backdrops`` (corner patches of the photos the border model is not confident about, uint8 M x 3 x S x S),
    ``confident`` (per photo, whether it gave a cut-out) and ``reasons`` (why the others did not, counted)."""

    cutouts: torch.Tensor
    backdrops: torch.Tensor
    confident: list[bool] = field(default_factory=list)
    reasons: Counter = field(default_factory=Counter)


def training_data(photos: Iterable[Image.Image], image_size: int, *, sources: list[str] | None = None) -> TrainingData:
    """Cut-outs and backdrop patches for ``Trainer`` from RGB photos (the self-supervision: see the module
    docstring). ``photos`` may be a generator: each is let go once used, so a catalogue need not fit in
    memory. ``ValueError`` when the border model is confident about none of them."""
    cutouts, patches, confident, reasons = [], [], [], Counter()
    for index, photo in enumerate(photos):
        photo = photo.convert("RGB")
        matte = border_matte(photo)
        cutout = cutout_from_photo(
            photo, max_side=TRAIN_CUTOUT_SIDE, source=sources[index] if sources else "", matte=matte
        )
        confident.append(cutout is not None)
        if cutout is None:
            # The reason without its numbers, so that equal reasons add up.
            reasons.update(reason.split(" (")[0] for reason in matte.reasons)
            patches.append(backdrop_patches([photo], image_size))
        else:
            cutouts.append(cutout)
    if not cutouts:
        raise ValueError(
            f"none of the {len(photos)} photos shows its product on a plain enough backdrop to learn from "
            f"(most common reasons: {', '.join(r for r, _ in reasons.most_common(3)) or 'none'}); add photos "
            "taken against a plain wall, sheet or table"
        )
    backdrops = torch.cat(patches) if patches else torch.zeros(0, 3, image_size, image_size, dtype=torch.uint8)
    return TrainingData(letterbox(cutouts, image_size), backdrops, confident, reasons)
