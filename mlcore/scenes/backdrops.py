"""Empty backdrops from catalogue photos: the product cut out and the hole filled (``empty_backdrop``), or the
largest parts of the photo the product never covers (``backdrop_crops``). A shop's own photo backdrops then
become the scene set the scene generator (``mlcore.scenegen``) learns from.

The product's mask comes from the caller (``mlcore.background.Segmenter``); here it is only widened and
filled. What the result promises: every pixel the mask marks as product, and a margin around it (its edge
halo, a contact shadow's darkest part), is replaced; every other pixel is the photo's own, exactly. The fill
is the trained inpainting model's when one is given, else a classical one:

1. a multigrid membrane fill (``mlcore.inpainting.networks.smooth_fill``): the hole's border colours
   continued smoothly inward, so light falloff and the colour of the floor or wall carry on;
2. plus texture: the backdrop's fine detail (the photo minus a blur of it, from product-free pixels only)
   copied in overlapping tiles from the nearest product-free places, blended with raised-cosine windows and
   scaled back to the surroundings' contrast, so the fill has the fabric's or the floor's grain instead of
   a flat smear.

Neither step reads a pixel inside the widened hole, which is what guarantees that no product colour
remains. What it cannot do: continue structure (a table's edge, a pattern's lines) across a large hole; the
fill is a smooth continuation with grain. When the product fills most of the photo, ``backdrop_crops`` (real
pixels only, but a smaller field of view) is the better source; see the scene generator report for numbers.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torchvision.transforms.functional import pil_to_tensor, to_pil_image

from ..inpainting.networks import smooth_fill

# A mask pixel is product from this value up ("L", 255 = product): soft edges carry product colour too.
PRODUCT_THRESHOLD = 16
# The hole is the product widened by this share of the photo's shorter side (at least MIN_GROW px): masks
# from a segmenter sit a pixel or two inside the true edge, and the edge's halo must go with the product.
GROW_SHARE = 0.03
MIN_GROW = 2
# Texture tiles: this share of the shorter side (at least MIN_TILE px), copied from the NEAREST product-free
# tiles (one of them at random), since a backdrop's grain changes across a photo (floor vs wall).
TILE_SHARE = 1 / 12
MIN_TILE = 8
NEAREST_SOURCES = 6
# Copied detail is clipped to this multiple of its median magnitude around the hole: grain (fabric, carpet,
# wood) is dense and passes, while sparse strong edges (a grout line, the wall meeting the floor), which
# copied tiles would repeat as stripes, are cut down to grain strength.
DETAIL_CLIP = 3.0
# Source tiles whose detail energy is above this multiple of the median tile's are not copied.
TYPICAL_ENERGY = 2.0
# The texture is what a Gaussian of sigma = tile / DETAIL_DIVISOR removes: finer than a tile, so the tiles'
# seams carry no shading, and the membrane fill provides everything coarser.
DETAIL_DIVISOR = 4
# ``backdrop_crops`` searches rectangles on a grid of this many cells on the photo's longer side.
CROP_GRID = 48


def _rgb(photo: Image.Image) -> Image.Image:
    if not isinstance(photo, Image.Image):
        raise ValueError(f"photo must be a PIL image, got {type(photo).__name__}")
    if photo.mode in ("RGBA", "LA", "PA") or (photo.mode == "P" and "transparency" in photo.info):
        rgba = photo.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return photo.convert("RGB")


def _mask_tensor(mask: Image.Image, photo: Image.Image) -> torch.Tensor:
    """The mask as float H x W in [0, 1] (1 = product), checked against the photo's size."""
    if not isinstance(mask, Image.Image):
        raise ValueError(f"mask must be a PIL image, got {type(mask).__name__}")
    if mask.size != photo.size:
        raise ValueError(f"mask is {mask.size[0]} x {mask.size[1]}, the photo {photo.size[0]} x {photo.size[1]}: "
                         "they must be the same size")
    return pil_to_tensor(mask.convert("L"))[0].float() / 255.0


def grow(hole: torch.Tensor, radius: int) -> torch.Tensor:
    """Bool H x W ``hole`` dilated by about a disc of ``radius`` pixels: an octagon, from 3 x 3 square and cross
    dilations in turn (a square would leave corners the fill shows; a true disc costs radius^2 per pixel)."""
    x = hole.float()[None, None]
    for i in range(max(0, int(radius))):
        if i % 2 == 0:
            x = F.max_pool2d(x, 3, stride=1, padding=1)
        else:
            x = torch.maximum(F.max_pool2d(x, (3, 1), stride=1, padding=(1, 0)),
                              F.max_pool2d(x, (1, 3), stride=1, padding=(0, 1)))
    return x[0, 0] > 0.5


def product_hole(mask: torch.Tensor) -> torch.Tensor:
    """Bool H x W: the product (``mask`` >= ``PRODUCT_THRESHOLD``) widened by ``GROW_SHARE``."""
    radius = max(MIN_GROW, round(GROW_SHARE * min(mask.shape)))
    return grow(mask >= PRODUCT_THRESHOLD / 255.0, radius)


def _gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of N x C x H x W (reflected edges)."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    channels = image.shape[1]
    # Reflect padding needs the pad below the side; small images fall back to replicating the edge.
    mode = "reflect" if min(image.shape[-2:]) > radius else "replicate"
    out = F.pad(image, (radius, radius, 0, 0), mode=mode)
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).repeat(channels, 1, 1, 1), groups=channels)
    out = F.pad(out, (0, 0, radius, radius), mode=mode)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(channels, 1, 1, 1), groups=channels)


def backdrop_detail(image: torch.Tensor, known: torch.Tensor, sigma: float) -> torch.Tensor:
    """The fine detail of 3 x H x W ``image`` where ``known`` (H x W bool) is true: the image minus its blur,
    the blur a normalised convolution of known pixels only, so the hole's colours never leak in. 0 elsewhere."""
    weight = known.float()[None, None]
    blurred = _gaussian_blur(image[None] * weight, sigma) / _gaussian_blur(weight, sigma).clamp_min(1e-6)
    return (image - blurred[0]) * known


def _window(tile: int) -> torch.Tensor:
    """tile x tile raised-cosine window; shifted by tile / 2 in both axes, copies of it add up to 1."""
    ramp = torch.sin(torch.pi * (torch.arange(tile, dtype=torch.float32) + 0.5) / tile) ** 2
    return ramp[:, None] * ramp[None, :]


def synthesise_texture(detail: torch.Tensor, known: torch.Tensor, hole: torch.Tensor, tile: int,
                       generator: torch.Generator) -> torch.Tensor:
    """Detail for the hole (3 x H x W, 0 outside it): overlapping tiles over the hole, each a copy of one of the
    ``NEAREST_SOURCES`` product-free tiles nearest to it (drawn from ``generator``), blended with
    raised-cosine windows and scaled to the contrast of the detail around the hole."""
    _, height, width = detail.shape
    step = tile // 2
    if height < tile or width < tile:
        return torch.zeros_like(detail)
    # Source tiles: top-left corners on the half-tile grid whose whole tile is product-free.
    free = F.avg_pool2d(known.float()[None, None], tile, stride=step)[0, 0] > 0.999
    # Only tiles of typical grain: one holding a line (a tile's grout, the skirting board) would be repeated
    # along the copied run as stripes.
    energy = F.avg_pool2d(detail.pow(2).sum(0)[None, None], tile, stride=step)[0, 0]
    if free.any():
        free &= energy <= TYPICAL_ENERGY * energy[free].median()
    sources = free.nonzero() * step
    if len(sources) == 0:
        return torch.zeros_like(detail)
    window = _window(tile)
    # Destination tiles cover the hole from half a tile before the image to half a tile past it, so every
    # hole pixel lies under four windows that sum to 1.
    padded = torch.zeros(3, height + 2 * tile, width + 2 * tile)
    weights = torch.zeros(height + 2 * tile, width + 2 * tile)
    near_hole = F.max_pool2d(F.pad(hole.float(), (tile, tile, tile, tile))[None, None], tile, stride=step)[0, 0] > 0
    offsets: dict[tuple[int, int], tuple[int, int]] = {}
    valid = {tuple(source) for source in sources.tolist()}
    for row, col in near_hole.nonzero().tolist():
        # (top, left) on the padded canvas; (top - tile, left - tile) in the image, where sources are.
        top, left = row * step, col * step
        image_top, image_left = top - tile, left - tile
        # Coherence: continue the left (else upper) neighbour's shift where it still lands on a product-free
        # tile, so runs of tiles copy one continuous piece of backdrop (a plank, a grout line) instead of a
        # mosaic whose seams show; else one of the nearest product-free tiles at random.
        offset = None
        for neighbour in ((row, col - 1), (row - 1, col)):
            shift = offsets.get(neighbour)
            if shift is not None and (image_top + shift[0], image_left + shift[1]) in valid:
                offset = shift
                break
        if offset is None:
            distance = (sources - torch.tensor([image_top, image_left])).float().pow(2).sum(1)
            nearest = distance.topk(min(NEAREST_SOURCES, len(sources)), largest=False).indices
            src_top, src_left = sources[nearest[int(torch.randint(len(nearest), (), generator=generator))]].tolist()
            offset = (src_top - image_top, src_left - image_left)
        offsets[row, col] = offset
        src_top, src_left = image_top + offset[0], image_left + offset[1]
        patch = detail[:, src_top : src_top + tile, src_left : src_left + tile]
        padded[:, top : top + tile, left : left + tile] += patch * window
        weights[top : top + tile, left : left + tile] += window
    texture = padded[:, tile : tile + height, tile : tile + width] / weights[tile : tile + height, tile : tile + width].clamp_min(1e-6)
    # Averaging independent tiles lowers the contrast where windows overlap: bring it back to the surroundings'.
    ring = grow(hole, tile) & known
    if ring.any() and hole.any():
        target = detail[:, ring].std(dim=1, keepdim=True)
        made = texture[:, hole].std(dim=1, keepdim=True).clamp_min(1e-6)
        texture = texture * (target / made).clamp_max(1.25)[:, :, None]
    return texture * hole


def classical_fill(image: torch.Tensor, hole: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """3 x H x W ``image`` in [0, 1] with its ``hole`` (bool H x W) filled: membrane fill plus copied texture.
    Pixels outside the hole come back unchanged; no pixel inside it is read."""
    known = ~hole
    height, width = hole.shape
    tile = max(MIN_TILE, round(TILE_SHARE * min(height, width)))
    tile += tile % 2
    base = smooth_fill(image[None] * known, hole.float()[None, None])[0]
    detail = backdrop_detail(image, known, tile / DETAIL_DIVISOR)
    around = grow(hole, 2 * tile) & known
    if around.any():
        limit = DETAIL_CLIP * detail[:, around].abs().median(dim=1).values.clamp_min(1e-4)[:, None, None]
        detail = torch.maximum(torch.minimum(detail, limit), -limit)
    generator = torch.Generator().manual_seed(int(seed))
    texture = synthesise_texture(detail, known, hole, tile, generator)
    filled = (base + texture).clamp(0.0, 1.0)
    return torch.where(hole[None], filled, image)


def _working_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def empty_backdrop(photo: Image.Image, mask: Image.Image, inpainter: Any = None, *, max_side: int = 512,
                   seed: int = 0) -> Image.Image:
    """The photo without its product: an RGB image of the photo shrunk to ``max_side`` on its longer side (never
    enlarged), where the product (``mask``: "L" the photo's size, 255 = product) widened by ``GROW_SHARE`` is
    filled, by ``inpainter.repair(image, mask)`` when an ``mlcore.inpainting`` ``Inpainter`` is given, else by
    ``classical_fill`` (``seed`` picks its texture tiles). Every pixel outside the widened hole is the (shrunk)
    photo's own, exactly. A mask with no product returns the shrunk photo."""
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 16:
        raise ValueError(f"max_side must be an int >= 16, got {max_side!r}")
    rgb = _rgb(photo)
    product = _mask_tensor(mask, rgb)
    size = _working_size(rgb.size, max_side)
    if size != rgb.size:
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
        # Area averaging: a working pixel that holds any product keeps some mask value, so it stays product.
        product = F.adaptive_max_pool2d(product[None, None], (size[1], size[0]))[0, 0]
    hole = product_hole(product)
    if not hole.any():
        return rgb
    if inpainter is not None:
        return inpainter.repair(rgb, to_pil_image(hole.to(torch.uint8) * 255, mode="L")).convert("RGB")
    image = pil_to_tensor(rgb).float() / 255.0
    filled = classical_fill(image, hole, seed=seed)
    # Outside the hole: the photo's own bytes, not a float round trip of them.
    out = torch.where(hole[None], filled.mul(255.0).round().clamp(0, 255).to(torch.uint8), pil_to_tensor(rgb))
    return to_pil_image(out)


def _largest_free_rectangle(free: torch.Tensor, min_cells: int, max_aspect: float) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) in cells of the largest all-true rectangle of bool ``free`` with both sides
    >= ``min_cells`` and aspect ratio <= ``max_aspect``; None when there is none. Integral image, every
    (height, width) from the largest area down, stopping at the first that fits somewhere."""
    rows, cols = free.shape
    integral = F.pad(free.float().cumsum(0).cumsum(1), (1, 0, 1, 0))
    shapes = [
        (h * w, h, w) for h in range(min_cells, rows + 1) for w in range(min_cells, cols + 1)
        if max(h, w) <= max_aspect * min(h, w)
    ]
    for _, h, w in sorted(shapes, reverse=True):
        sums = integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]
        hits = (sums >= h * w - 0.5).nonzero()
        if len(hits):
            # Of equal rectangles, the one nearest the photo's centre: less vignetting, fewer frame edges.
            centre = torch.tensor([(rows - h) / 2, (cols - w) / 2])
            top, left = hits[(hits.float() - centre).pow(2).sum(1).argmin()].tolist()
            return top, left, h, w
    return None


def backdrop_crops(photo: Image.Image, mask: Image.Image, *, count: int = 3, min_side_share: float = 0.3,
                   max_aspect: float = 2.0) -> list[Image.Image]:
    """The largest product-free rectangles of ``photo``, largest first, at the photo's full resolution: up to
    ``count`` that do not overlap, each at least ``min_side_share`` of the photo's shorter side on both sides
    and no longer than ``max_aspect`` x its width (or height). Product-free means outside the product widened
    as ``empty_backdrop`` widens it, so no edge halo is included. May be empty (a product that fills the
    frame)."""
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if not 0 < min_side_share <= 1 or max_aspect < 1:
        raise ValueError("min_side_share must be in (0, 1] and max_aspect >= 1")
    rgb = _rgb(photo)
    width, height = rgb.size
    hole = product_hole(_mask_tensor(mask, rgb))
    cell = max(width, height) / CROP_GRID
    rows, cols = max(1, math.floor(height / cell)), max(1, math.floor(width / cell))
    # A cell is free only if every pixel under it is (max pooling onto the grid; the leftover strip at the
    # right and bottom edges is not searched).
    used = F.adaptive_max_pool2d(hole[: round(rows * cell), : round(cols * cell)].float()[None, None], (rows, cols))[0, 0]
    free = used < 0.5
    min_cells = max(1, math.ceil(min_side_share * min(width, height) / cell))
    crops = []
    for _ in range(count):
        found = _largest_free_rectangle(free, min_cells, max_aspect)
        if found is None:
            break
        top, left, h, w = found
        free[top : top + h, left : left + w] = False
        box = (math.ceil(left * cell), math.ceil(top * cell), math.floor((left + w) * cell), math.floor((top + h) * cell))
        crops.append(rgb.crop(box))
    return crops


def photo_window(photo: Image.Image, seed: int) -> Image.Image:
    """A backdrop cut from one of a scene set's own photos: a seeded square window of 70-100% of its shorter
    side, mirrored half the time, so consecutive seeds on one photo give different framings."""
    generator = torch.Generator().manual_seed(seed)
    rgb = _rgb(photo)
    side = min(rgb.size) * (0.7 + 0.3 * float(torch.rand((), generator=generator)))
    left = float(torch.rand((), generator=generator)) * (rgb.width - side)
    top = float(torch.rand((), generator=generator)) * (rgb.height - side)
    window = rgb.crop((round(left), round(top), round(left + side), round(top + side)))
    return ImageOps.mirror(window) if float(torch.rand((), generator=generator)) < 0.5 else window
