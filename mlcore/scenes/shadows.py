"""Shadows and a floor reflection that ground a placed product on its backdrop. Pure tensor maths on
the placed alpha (H x W, float in [0, 1] or uint8) and the floor line (the canvas row the product
stands on, ``floor_y``: the first row below it).

The product is treated as a flat cut-out standing upright on the floor line (a billboard), the
camera looking slightly down at a floor that recedes up the image. Each returned darkening is a float
H x W in [0, 1]: how much of the backdrop's light it takes away there.

- Contact shadow: where the product touches the floor, little light reaches: a thin, dark, soft band
  along the floor line under the product's lowest rows, thinner towards its ends (an ellipse-ish
  smudge), inside a wider and lighter occlusion band. Columns whose bottom is well above the floor
  (a hem's curve) do not cast it.
- Cast shadow: each product pixel at height h above the floor throws its shadow h / tan(elevation)
  along the floor, away from the light. On the image the floor's depth is foreshortened (``FLOOR_SQUASH``),
  so the shadow is the silhouette sheared sideways and squashed/flipped vertically about the floor
  line, softer (penumbra) and lighter the farther it falls from the contact line.
- Reflection: the product mirrored about the floor line (correct for an upright cut-out on a mirror
  floor), fading out over a share of its height and a little blurred with distance (a glossy floor).

A flat lay (``Lighting.pose`` "flat": a garment lying on a table or a bed, shot from above) has no floor
line and no upright silhouette to project: the fabric lies a little above the surface at its edges, so its
shadow is the silhouette itself, offset away from the light by that lift over tan(elevation) and blurred
(a drop shadow), plus a tight, light occlusion hugging the outline where it touches. No reflection.

All kernels are finite and the caller quantises the darkening to 8 bits, so far from the product the
backdrop is untouched: exactly its own pixels.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .filters import blur, varying_blur
from .grounding import grounded_parts, product_box
from .layout import finite as _finite

# The camera sees the floor at a grazing angle: a step of depth along the floor covers this share of
# the same step across it (about 17 degrees of camera elevation).
FLOOR_SQUASH = 0.3
# A shadow falling away from the camera (light from the front) is hidden behind the product and
# foreshortened; it may reach at most this share of the product's height up the image.
MAX_BEHIND = 0.5
# Real products have depth: a light exactly from the side still casts a shadow this deep (share of
# the product's height, on the image) in front of the cut-out.
MIN_DEPTH = 0.06
# Lowest elevation allowed; below it shadows run off the frame.
MIN_ELEVATION = 10.0
# Cast shadow: opacity falls to (1 - CAST_FADE) of its value at the product's full height; blur
# (sigma) starts at CAST_SIGMA0 and grows by CAST_PENUMBRA per unit height, in shares of the height.
CAST_FADE = 0.7
CAST_SIGMA0 = 0.006
CAST_PENUMBRA = 0.06
# Contact shadow: thickness (sigma, share of the product's larger box side, at least 1 px) and how
# high above the floor line a row still counts as touching (share of the product's height).
CONTACT_THICKNESS = 0.01
CONTACT_BAND = 0.04
# The occlusion around it: wider, lighter, and reaching further up the product.
AMBIENT_THICKNESS = 0.03
AMBIENT_BAND = 0.15
AMBIENT_SHARE = 0.4
# Reflection: fades to nothing over this share of the product's height; blur sigma grows by
# REFLECTION_BLUR per pixel of distance from the floor line.
REFLECTION_LENGTH = 0.4
REFLECTION_BLUR = 0.03
# Shadows are soft: they are computed on a copy no larger than this (long side) and scaled back up.
WORKING_SIDE = 640
# How the product sits: upright on the floor line, or lying flat seen from above.
POSES = ("standing", "flat")
# Flat lay: the edges' lift above the surface, the drop shadow's blur and the outline occlusion's blur, in
# shares of the product's larger box side (a shirt 60 cm across: about 7 mm of lift, a 7 mm soft edge).
FLAT_LIFT = 0.012
FLAT_SIGMA = 0.012
FLAT_CONTACT_SIGMA = 0.003



@dataclass(frozen=True)
class Lighting:
    """The key light of the scene.

    ``direction``: where the light comes FROM, in degrees in the image plane, counter-clockwise from
    the right as on a maths plot: 0 = from the right, 90 = from the top of the frame (behind the
    product, from the far wall: the shadow falls towards the viewer, down the image), 180 = from the
    left, 270 = from the bottom of the frame (the camera's side: the shadow falls behind the
    product). The default 135 is from behind on the left: the shadow falls forward and to the right.
    ``elevation``: degrees above the floor, 10..90; low light casts a long shadow. ``contact`` and
    ``cast``: opacity (0..1) of the contact and cast shadows, 0 = none. ``reflection``: strength of
    a floor reflection, 0..0.5 (0 = a matte floor). ``pose``: "standing" (upright on the floor line) or
    "flat" (a flat lay seen from above: a drop shadow, no reflection; see the module docstring)."""

    direction: float = 135.0
    elevation: float = 45.0
    contact: float = 0.55
    cast: float = 0.3
    reflection: float = 0.0
    pose: str = "standing"

    def __post_init__(self) -> None:
        _finite("direction", self.direction)
        if not MIN_ELEVATION <= _finite("elevation", self.elevation) <= 90.0:
            raise ValueError(f"elevation must be in [{MIN_ELEVATION:g}, 90] degrees, got {self.elevation!r}")
        for name in ("contact", "cast"):
            if not 0.0 <= _finite(name, getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)!r}")
        if not 0.0 <= _finite("reflection", self.reflection) <= 0.5:
            raise ValueError(f"reflection must be in [0, 0.5], got {self.reflection!r}")
        if self.pose not in POSES:
            raise ValueError(f"pose must be one of {POSES}, got {self.pose!r}")
        if self.pose == "flat" and self.reflection > 0:
            raise ValueError("a flat-lay product has no floor reflection: reflection must be 0 with pose 'flat'")

    def as_dict(self) -> dict[str, float]:
        """Plain values, for a result's report."""
        return {k: v if isinstance(v, str) else float(v) for k, v in asdict(self).items()}


def _alpha(alpha: torch.Tensor) -> torch.Tensor:
    if alpha.dim() != 2:
        raise ValueError(f"alpha must be H x W, got shape {tuple(alpha.shape)}")
    return alpha.float() / 255.0 if alpha.dtype == torch.uint8 else alpha.float().clamp(0.0, 1.0)


def _check_floor(floor_y: int, height: int) -> int:
    if isinstance(floor_y, bool) or not isinstance(floor_y, int) or not 0 <= floor_y <= height:
        raise ValueError(f"floor_y must be a row index in 0..{height}, got {floor_y!r}")
    return floor_y


def _extent(alpha: torch.Tensor) -> tuple[int, int, int] | None:
    """(top row, left, right) of the product, or None when alpha is all zero. (Its height, for the
    shadows' proportions, counts from its top to the floor line.)"""
    rows = torch.nonzero(alpha.amax(dim=1) > 0).flatten()
    if len(rows) == 0:
        return None
    cols = torch.nonzero(alpha.amax(dim=0) > 0).flatten()
    return int(rows[0]), int(cols[0]), int(cols[-1]) + 1


def shadow_vector(lighting: Lighting) -> tuple[float, float]:
    """(a, b): a product pixel h rows above the floor line throws its shadow to a x h columns right
    and b x h rows below the floor line on the image (b < 0: above it, behind the product)."""
    theta = math.radians(lighting.direction)
    length = 1.0 / math.tan(math.radians(lighting.elevation))
    # The shadow points away from the light; image y grows downwards.
    a = -math.cos(theta) * length
    b = math.sin(theta) * length * FLOOR_SQUASH
    if abs(b) < MIN_DEPTH:
        b = MIN_DEPTH if b >= -1e-9 else -MIN_DEPTH
    return a, max(b, -MAX_BEHIND)


def _floor_band(alpha: torch.Tensor, floor_y: int, band_share: float, thickness_share: float) -> torch.Tensor:
    """A soft band along the floor line under the columns whose alpha reaches down to it: full
    where a column's alpha sits on the floor, fading with how high above the floor (up to
    ``band_share`` of the product's height) it stops; ``thickness_share`` of the product's larger
    side (at least 1 px) is its Gaussian sigma, thinner where the footprint is thin."""
    height, width = alpha.shape
    out = torch.zeros(height, width)
    top, left, right = _extent(alpha)
    product_h = max(1, floor_y - top)
    thickness = max(1.0, thickness_share * max(product_h, right - left))
    band = max(2, round(band_share * product_h))
    # How much of each column touches the floor: its alpha in the rows just above the floor line,
    # counting less the higher the row.
    rows = alpha[max(0, floor_y - band) : floor_y]
    heights = torch.arange(rows.shape[0], 0, -1, dtype=torch.float32)[:, None] - 0.5
    footprint = (rows * (1.0 - heights / band).clamp_min(0.0)).amax(dim=0)
    footprint = blur(footprint[None], (0.0, 1.5 * thickness))[0].clamp(0.0, 1.0)
    reach = math.ceil(3.0 * thickness)
    y0, y1 = max(0, floor_y - reach), min(height, floor_y + reach)
    offset = torch.arange(y0, y1, dtype=torch.float32)[:, None] + 0.5 - floor_y
    # Thinner where the footprint is thin: the band tapers to its ends like a squashed ellipse.
    local = thickness * footprint.sqrt().clamp_min(1e-3)
    out[y0:y1] = footprint * torch.exp(-0.5 * (offset / local) ** 2) * (offset.abs() <= 3.0 * local)
    return out


def contact_shadow(alpha: torch.Tensor, floor_y: int, opacity: float = 0.55) -> torch.Tensor:
    """Darkening (float H x W in [0, 1]) of the contact shadow under the product that stands on row
    ``floor_y`` (see the module docstring): a thin dark core where the product touches the floor,
    inside a wider, lighter occlusion band under whatever comes close to the floor (a round hat's
    brim, a shoe's sole), so a product that touches the floor at a point still looks grounded.
    Zero beyond three ambient thicknesses of the floor line."""
    alpha = _alpha(alpha)
    height, width = alpha.shape
    floor_y = _check_floor(floor_y, height)
    if _extent(alpha) is None or opacity <= 0 or floor_y == 0:
        return torch.zeros(height, width)
    core = opacity * _floor_band(alpha, floor_y, CONTACT_BAND, CONTACT_THICKNESS)
    ambient = opacity * AMBIENT_SHARE * _floor_band(alpha, floor_y, AMBIENT_BAND, AMBIENT_THICKNESS)
    return 1.0 - (1.0 - core) * (1.0 - ambient)


def _working_copy(alpha: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(``alpha`` shrunk to at most ``WORKING_SIDE`` on its long side, the shrink factor >= 1): a soft shadow
    loses nothing on it, and its blurs cost a fraction."""
    height, width = alpha.shape
    factor = max(1.0, max(height, width) / WORKING_SIDE)
    small = (max(1, round(height / factor)), max(1, round(width / factor)))
    return F.interpolate(alpha[None, None], size=small, mode="bilinear", antialias=True, align_corners=False)[0, 0], factor


def _full_size(shade: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A darkening computed on ``_working_copy`` back at ``size`` (height, width), in [0, 1]."""
    return F.interpolate(shade[None, None], size=size, mode="bilinear", align_corners=False)[0, 0].clamp(0, 1)


def cast_shadow(alpha: torch.Tensor, floor_y: int, lighting: Lighting) -> torch.Tensor:
    """Darkening (float H x W in [0, 1]) of the product's shadow cast on the floor by ``lighting``
    (see the module docstring): the silhouette projected about the floor line ``floor_y``, blurred
    more and faded with its height above the floor."""
    alpha = _alpha(alpha)
    height, width = alpha.shape
    floor_y = _check_floor(floor_y, height)
    extent = _extent(alpha)
    if extent is None or lighting.cast <= 0:
        return torch.zeros(height, width)
    work, _ = _working_copy(alpha)
    small = tuple(work.shape)
    fy, fx = small[0] / height, small[1] / width
    floor_s = floor_y * fy
    product_h = max(1.0, (floor_y - extent[0]) * fy)
    a, b = shadow_vector(lighting)
    # For each output pixel (centre u, v): the product height h whose shadow lands there, and the
    # source pixel at that height.
    v = torch.arange(small[0], dtype=torch.float32)[:, None] + 0.5
    u = torch.arange(small[1], dtype=torch.float32)[None, :] + 0.5
    h = ((v - floor_s) / b).expand(small)
    src_y = floor_s - h
    src_x = u - a * h * (fx / fy)
    grid = torch.stack((src_x / small[1] * 2 - 1, src_y / small[0] * 2 - 1), dim=-1)
    projected = F.grid_sample(
        work[None, None], grid[None], mode="bilinear", padding_mode="zeros", align_corners=False
    )[0, 0]
    projected = torch.where(h >= 0, projected, torch.zeros_like(projected))
    rise = (h / product_h).clamp(0.0, 1.0)
    projected = projected * lighting.cast * (1.0 - CAST_FADE * rise)
    sigma = product_h * (CAST_SIGMA0 + CAST_PENUMBRA * rise)
    soft = varying_blur(projected[None], sigma, product_h * (CAST_SIGMA0 + CAST_PENUMBRA))[0]
    return _full_size(soft, (height, width))


def flat_shadow(alpha: torch.Tensor, lighting: Lighting) -> torch.Tensor:
    """Darkening (float H x W in [0, 1]) under a product lying flat, seen from above (see the module
    docstring): its silhouette moved away from the light by ``FLAT_LIFT`` / tan(elevation) of its size and
    blurred, at ``lighting.cast``, with an occlusion along the outline at ``lighting.contact`` x
    ``AMBIENT_SHARE``."""
    alpha = _alpha(alpha)
    height, width = alpha.shape
    box = product_box(alpha)
    if box is None or (lighting.cast <= 0 and lighting.contact <= 0):
        return torch.zeros(height, width)
    left, top, right, bottom = box
    work, factor = _working_copy(alpha)
    small = tuple(work.shape)
    size = max(bottom - top - 1, right - left - 1, 1) / factor
    theta = math.radians(lighting.direction)
    distance = FLAT_LIFT * size / math.tan(math.radians(lighting.elevation))
    # Away from the light, image y downwards: light from the top of the frame (90) moves the shadow down.
    dx, dy = -math.cos(theta) * distance, math.sin(theta) * distance
    grid_y = (torch.arange(small[0], dtype=torch.float32) + 0.5 - dy) / small[0] * 2 - 1
    grid_x = (torch.arange(small[1], dtype=torch.float32) + 0.5 - dx) / small[1] * 2 - 1
    grid = torch.stack(torch.meshgrid(grid_x, grid_y, indexing="xy"), dim=-1)
    moved = F.grid_sample(work[None, None], grid[None], mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0]
    cast = lighting.cast * blur(moved, FLAT_SIGMA * size)
    contact = lighting.contact * AMBIENT_SHARE * blur(work, max(0.5, FLAT_CONTACT_SIGMA * size))
    shade = 1.0 - (1.0 - cast.clamp(0, 1)) * (1.0 - contact.clamp(0, 1))
    return _full_size(shade, (height, width))


def darkening(
    alpha: torch.Tensor, floor_y: int, lighting: Lighting, *, parts: list[tuple[torch.Tensor, int]] | None = None
) -> torch.Tensor:
    """Contact and cast shadows together (float H x W in [0, 1]), each taking its share of the light
    the others leave; a flat lay's ``flat_shadow``. A product in several large pieces (``grounding.grounded_parts``, or ``parts``
    when the caller has them) has each piece shadowed from its own base, so none hangs in the air."""
    alpha = _alpha(alpha)
    floor_y = _check_floor(floor_y, alpha.shape[0])
    if lighting.pose == "flat":
        return flat_shadow(alpha, lighting)
    light = torch.ones_like(alpha)
    for part, part_floor in parts if parts is not None else grounded_parts(alpha, floor_y):
        light = light * (1.0 - contact_shadow(part, part_floor, lighting.contact))
        light = light * (1.0 - cast_shadow(part, part_floor, lighting))
    return 1.0 - light


def _reflection(
    colour: torch.Tensor, alpha: torch.Tensor, floor_y: int, strength: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``reflection`` of one piece standing on ``floor_y`` (arguments already checked)."""
    height, width = alpha.shape
    out_colour, out_alpha = torch.zeros(3, height, width), torch.zeros(height, width)
    extent = _extent(alpha)
    if extent is None or strength <= 0:
        return out_colour, out_alpha
    length = max(1, math.ceil(REFLECTION_LENGTH * (floor_y - extent[0])))
    rows = min(length, height - floor_y, floor_y)
    if rows <= 0:
        return out_colour, out_alpha
    mirrored = torch.cat((colour[:, floor_y - rows : floor_y].float(), alpha[None, floor_y - rows : floor_y])).flip(1)
    k = torch.arange(rows, dtype=torch.float32)[:, None]
    mirrored = varying_blur(mirrored, REFLECTION_BLUR * k, REFLECTION_BLUR * rows, border="zeros")
    weight = strength * (1.0 - k / length).clamp_min(0.0) ** 2
    out_colour[:, floor_y : floor_y + rows] = mirrored[:3] * weight
    out_alpha[floor_y : floor_y + rows] = (mirrored[3] * weight).clamp(0.0, 1.0)
    return out_colour, out_alpha


def reflection(
    colour: torch.Tensor,
    alpha: torch.Tensor,
    floor_y: int,
    strength: float,
    *,
    parts: list[tuple[torch.Tensor, int]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The product's floor reflection: (premultiplied colour 3 x H x W in ``colour``'s units, alpha
    float H x W in [0, 1]), to composite over the backdrop under the product.

    ``colour``: the placed product's premultiplied colour; ``alpha`` its alpha. Row floor_y + k
    mirrors row floor_y - 1 - k, weighted by ``strength`` x (1 - k / L)^2, L = ``REFLECTION_LENGTH``
    of the product's height, and blurred a little more with k. Zero above the floor line. A product
    in several large pieces is mirrored piece by piece, each about its own base (``parts``: as
    ``darkening``)."""
    if not 0.0 <= _finite("strength", strength) <= 0.5:
        raise ValueError(f"strength must be in [0, 0.5], got {strength!r}")
    alpha = _alpha(alpha)
    height, width = alpha.shape
    floor_y = _check_floor(floor_y, height)
    if tuple(colour.shape) != (3, height, width):
        raise ValueError(f"colour must be 3 x {height} x {width}, got {tuple(colour.shape)}")
    out_colour, out_alpha = torch.zeros(3, height, width), torch.zeros(height, width)
    if strength <= 0:
        return out_colour, out_alpha
    parts = parts if parts is not None else grounded_parts(alpha, floor_y)
    if len(parts) == 1:
        return _reflection(colour.float(), alpha, parts[0][1], strength)
    for part, part_floor in parts:
        share = torch.where(alpha > 0, part / alpha.clamp_min(1e-12), torch.zeros_like(alpha))
        mirrored, mirrored_alpha = _reflection(colour.float() * share, part, part_floor, strength)
        # One piece's reflection over another's (they rarely overlap).
        out_colour = mirrored + (1.0 - mirrored_alpha) * out_colour
        out_alpha = mirrored_alpha + (1.0 - mirrored_alpha) * out_alpha
    return out_colour, out_alpha
