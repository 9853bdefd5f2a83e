"""Compose a product scene: the real product, cut out by its matte, standing on a new backdrop at full
resolution, with contact and cast shadows, an optional floor reflection and optional colour
harmonisation.

Layers, back to front: the backdrop (fitted, depth of field) -> darkened by the shadows -> the
reflection -> the product. The product's colour is premultiplied by its alpha and resampled without
negative lobes (``placement``), so:

- where the placed alpha is 0 the output is exactly the (shadowed, reflecting) backdrop, and on a
  white backdrop without lighting every such pixel is #FFFFFF;
- where the alpha is 255 and the product was not resampled (scale 1.0) the output is exactly the
  photo's pixel, unless a harmoniser changed it;
- the alpha is the matte's, placed: shadows and harmonisation never touch it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from PIL import Image

from ..background.images import to_tensor
from .depth import check_look, fit_backdrop
from .grounding import grounded_parts
from .layout import DEFAULT_MIN_LONG_SIDE, Layout
from .matte import premultiplied_foreground
from .placement import FloorPlacement, place_product, read_inputs
from .shadows import Lighting, darkening, reflection

# (product rgb 3 x H x W straight in [0, 1], alpha H x W in [0, 1], backdrop rgb 3 x H x W in [0, 1])
# -> (new product rgb, a report for the result's info).
Harmoniser = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict]]
Backdrop = Image.Image | tuple[int, int, int] | str
_HEX = re.compile(r"^#([0-9a-fA-F]{6})$")


@dataclass
class SceneComposite:
    """A composed scene. ``image``: RGB at the canvas size. ``alpha``: the placed product's alpha
    (uint8 H x W tensor). ``box``: (left, top, right, bottom) of alpha > 0. ``scale``: photo to
    canvas pixels. ``info``: what was done (canvas, fill, floor, moved, lighting, harmonisation...)."""

    image: Image.Image
    alpha: torch.Tensor
    box: tuple[int, int, int, int]
    scale: float
    info: dict = field(default_factory=dict)


def _solid(backdrop: str | tuple) -> tuple[int, int, int]:
    if isinstance(backdrop, str):
        if backdrop == "white":
            return 255, 255, 255
        if _HEX.match(backdrop):
            value = int(backdrop[1:], 16)
            return value >> 16, (value >> 8) & 255, value & 255
        raise ValueError(f"backdrop must be 'white', '#rrggbb', (r, g, b) or a PIL image; got {backdrop!r}")
    if (
        not isinstance(backdrop, (tuple, list))
        or len(backdrop) != 3
        or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in backdrop)
    ):
        raise ValueError(f"backdrop colour must be three ints in 0..255, got {backdrop!r}")
    return tuple(backdrop)


def backdrop_layer(
    backdrop: Backdrop, placement: FloorPlacement, *, depth_of_field: float, grain: float, seed: int
) -> tuple[torch.Tensor, str]:
    """(float 3 x H x W of integers 0..255, kind "image" / "colour") for the placement's canvas; an
    image is fitted with its depth of field focused on the placement's floor line."""
    width, height = placement.canvas
    if isinstance(backdrop, Image.Image):
        fitted = fit_backdrop(
            backdrop, (width, height), floor=placement.floor_y / height,
            depth_of_field=depth_of_field, grain=grain, seed=seed,
        )
        return to_tensor(fitted).float(), "image"
    colour = torch.tensor(_solid(backdrop), dtype=torch.float32)
    return colour[:, None, None].expand(3, height, width).clone(), "colour"


def _harmonised(
    harmonise: Harmoniser, colour: torch.Tensor, alpha8: torch.Tensor, base: torch.Tensor
) -> tuple[torch.Tensor, dict]:
    """The harmoniser's product colour, premultiplied again by the unchanged alpha (so it cannot
    paint outside the product), and its report."""
    alpha = alpha8.float()
    straight = torch.where(alpha > 0, colour / alpha.clamp_min(1.0), torch.zeros_like(colour)).clamp(0.0, 1.0)
    result = harmonise(straight, alpha / 255.0, base / 255.0)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError("harmonise must return (product rgb, report dict)")
    new, report = result
    if not isinstance(new, torch.Tensor) or tuple(new.shape) != tuple(colour.shape):
        raise ValueError(f"harmonise must return product rgb of shape {tuple(colour.shape)}")
    if not bool(torch.isfinite(new).all()):
        raise ValueError("harmonise returned non-finite values")
    return new.float().clamp(0.0, 1.0) * alpha, dict(report or {})


def _to_image(pixels: torch.Tensor) -> Image.Image:
    out = pixels.round().clamp(0, 255).to(torch.uint8)
    return Image.frombytes("RGB", (out.shape[2], out.shape[1]), out.permute(1, 2, 0).contiguous().numpy().tobytes())


def compose_scene(
    photo: Image.Image,
    matte: Image.Image,
    backdrop: Backdrop,
    *,
    layout: Layout,
    lighting: Lighting | None,
    harmonise: Harmoniser | None = None,
    seed: int = 0,
    depth_of_field: float = 1.0,
    grain: float = 0.0,
    decontaminate: bool = True,
    min_long_side: int = DEFAULT_MIN_LONG_SIDE,
) -> SceneComposite:
    """The product of ``photo`` (cut out by ``matte``, mode "L" at the photo's size, e.g.
    ``soft_matte``'s) standing in a scene.

    ``backdrop``: a PIL image (scaled to cover, depth of field, ``grain``), "white", "#rrggbb" or an
    (r, g, b) colour. ``layout``: canvas, fill and floor line (``canvas_for``, ``place_on_floor``).
    ``lighting``: shadows and reflection, or None for none. ``harmonise``: optional callable (see
    ``Harmoniser``) applied to the product's pixels on the canvas before blending; it sees the
    backdrop as shadowed. ``seed``: the grain's. ``decontaminate``: remove the old backdrop's colour
    from the matte's soft edge (``matte.premultiplied_foreground``). ValueError names what is wrong."""
    if not isinstance(layout, Layout):
        raise ValueError(f"layout must be a Layout, got {type(layout).__name__}")
    if lighting is not None and not isinstance(lighting, Lighting):
        raise ValueError(f"lighting must be a Lighting or None, got {type(lighting).__name__}")
    if harmonise is not None and not callable(harmonise):
        raise ValueError("harmonise must be a callable or None")
    if not isinstance(backdrop, Image.Image):
        _solid(backdrop)  # refuse a bad colour before any work
    check_look(depth_of_field, grain, seed)
    rgb, alpha = read_inputs(photo, matte)
    colour = premultiplied_foreground(rgb, alpha) if decontaminate else None
    placement = place_product(rgb, alpha, layout, colour=colour, min_long_side=min_long_side)
    width, height = placement.canvas
    base, kind = backdrop_layer(backdrop, placement, depth_of_field=depth_of_field, grain=grain, seed=seed)
    pure = True
    parts = None
    if lighting is not None:
        # A flat lay has no floor to stand its pieces on.
        parts = None if lighting.pose == "flat" else grounded_parts(placement.alpha.float() / 255.0, placement.floor_y)
        # 8-bit darkening: the shadow's far tail rounds to exactly 0, so the backdrop stays exact there.
        shade = (darkening(placement.alpha, placement.floor_y, lighting, parts=parts) * 255.0).round()
        pure = not bool(((shade > 0) & (placement.alpha == 0)).any())
        base = (base * (255.0 - shade) / 255.0).round()
    product, report = placement.colour, None
    if harmonise is not None:
        product, report = _harmonised(harmonise, product, placement.alpha, base)
    if lighting is not None and lighting.reflection > 0:
        mirrored, mirrored_alpha = reflection(
            product, placement.alpha, placement.floor_y, lighting.reflection, parts=parts
        )
        base = (mirrored + (1.0 - mirrored_alpha) * base).round()
        pure = pure and not bool(((mirrored_alpha > 0) & (placement.alpha == 0)).any())
    out = product + (1.0 - placement.alpha.float() / 255.0) * base
    left, top, right, bottom = placement.box
    info = {
        "canvas": (width, height),
        "box": placement.box,
        "scale": placement.scale,
        "fill": max((right - left) / width, (bottom - top) / height),
        "fill_requested": layout.fill,
        "floor": placement.floor_y / height,
        "floor_requested": layout.floor,
        "floor_y": placement.floor_y,
        "moved": placement.moved,
        "backdrop": kind,
        "depth_of_field": depth_of_field if kind == "image" else 0.0,
        "lighting": lighting.as_dict() if lighting is not None else None,
        "harmonisation": report,
        "decontaminated": decontaminate,
        "pure_background": pure,
    }
    return SceneComposite(
        image=_to_image(out), alpha=placement.alpha, box=placement.box, scale=placement.scale, info=info
    )
