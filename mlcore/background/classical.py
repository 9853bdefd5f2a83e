"""The classical cut-out: a colour model of the photo's border, thresholded, cleaned up, and a verdict
on whether the photo is one this model can judge.

Many catalogue photos show the garment on a near-uniform backdrop (a sheet, a wall, a table). For
those the backdrop is predictable from the border alone:

1. At a working resolution (``WORK_SIDE`` long side) the photo goes to CIELAB. A smooth surface, a
   quadratic in x and y per Lab channel, is fitted by least squares to the outer ring of pixels,
   refitted twice without the ring pixels it explains worst (the garment often touches the border).
   A surface, not one colour: phone photos are lit unevenly, and a backdrop darkens toward a corner.
2. Each pixel's distance to the surface (CIELAB, lightness at half weight so shadows stay
   backdrop) is compared with a threshold set by the ring's own noise, never below ``MIN_THRESHOLD``.
3. Cleanup: opening (specks), closing (thin gaps), the large components (several may stay: shoes come
   in pairs), small enclosed holes filled (prints and highlights that match the backdrop).
4. The working-resolution mask becomes a trimap at full resolution; inside its uncertain band the
   alpha ramps with the full-resolution distance, so edges are as sharp as the photo.

Verdict (``BorderMatte.confident``): the model only claims photos it can judge: a backdrop the
surface explains (low residual), little of the border covered by the product, a plausible product
size, few pieces, not cut by the frame, and a mask that barely moves when the threshold is scaled by
0.7 or 1.5 (a product that stands out from its backdrop gives a stable mask; a textured backdrop
does not). These photos give the training and test cut-outs (``composites``); on the others the
network is used. On the clothing photos 464 of 1,275 train and 192 of 372 test photos qualify (36%
and 52%); the masks of a sample were checked by eye: right on plain sheets, walls and tables, with a
light shadow sometimes kept where it is as dark as a grey garment would be.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from PIL import Image

from . import morphology
from .images import to_tensor
from .lab import lab_to_srgb, srgb_to_lab, weighted_delta_e

WORK_SIDE = 256
# The ring the backdrop is learned from, as a share of the working image's shorter side.
RING_SHARE = 0.03
# Least-squares refits that drop the ring pixels the surface explains worst.
REFITS = 2
# A ring pixel farther than this many noise units (or MIN_THRESHOLD) is the product, not backdrop.
RING_OUTLIER = 3.0
# Threshold on the weighted CIELAB distance: NOISE_MULTIPLE x the ring's median residual, at least
# MIN_THRESHOLD (a just-noticeable difference is ~2.3; garments differ from backdrops by far more).
MIN_THRESHOLD = 10.0
NOISE_MULTIPLE = 4.0
# Cleanup radii at the working resolution, and what counts as a piece of product.
OPEN_RADIUS = 1
CLOSE_RADIUS = 2
COMPONENT_RELATIVE = 0.15
COMPONENT_MIN_SHARE = 0.003
HOLE_MAX_SHARE = 0.02
# Soft edge: alpha ramps from 0 to 1 while the distance goes from (1 - EDGE) to (1 + EDGE) x threshold.
EDGE = 0.5

# The verdict. Thresholds chosen on the train split by looking at the masks (bench/background.py
# reports how many photos qualify).
MAX_BACKDROP_RESIDUAL = 3.5
MIN_CLEAN_BORDER = 0.85
# Share of the outermost pixel ring the final mask may cover: a garment cut by the frame has a
# straight edge that is not its own.
MAX_FRAME_CONTACT = 0.05
FOREGROUND_SHARE = (0.04, 0.75)
MAX_PIECES = 3
MIN_STABILITY = 0.93
# The threshold multiples the mask must survive.
STABILITY_FACTORS = (0.7, 1.5)


@dataclass
class BorderMatte:
    """The border model's cut-out of one photo.

    ``alpha``: float H x W in [0, 1] at the photo's resolution. ``confident``: whether the photo is one
    the model can judge; ``reasons`` says why not. ``coefficients``: the fitted backdrop surface (6 x 3,
    CIELAB), see ``backdrop``. ``stats``: the measurements the verdict is made of.
    """

    alpha: torch.Tensor
    confident: bool
    reasons: list[str]
    coefficients: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)

    def backdrop(self) -> torch.Tensor:
        """The fitted backdrop colour at every pixel (float 3 x H x W, sRGB in [0, 1]): what lets a
        cut-out's edge pixels be freed of the backdrop's tint (``composites.decontaminate``)."""
        height, width = self.alpha.shape
        return lab_to_srgb(backdrop_surface(self.coefficients, height, width))


def _basis(height: int, width: int) -> torch.Tensor:
    """Quadratic surface basis (1, x, y, x², xy, y²) on coordinates in [-1, 1]: 6 x H x W."""
    y = torch.linspace(-1.0, 1.0, height)[:, None].expand(height, width)
    x = torch.linspace(-1.0, 1.0, width)[None, :].expand(height, width)
    return torch.stack((torch.ones_like(x), x, y, x * x, x * y, y * y))


def _ring(height: int, width: int) -> torch.Tensor:
    depth = max(2, round(RING_SHARE * min(height, width)))
    ring = torch.ones(height, width, dtype=torch.bool)
    ring[depth:-depth, depth:-depth] = False
    return ring


def fit_backdrop(lab: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The coefficients (6 x 3) of the backdrop surface fitted to the ring of ``lab`` (3 x H x W), and
    its measurements: ``residual`` (median distance of the ring pixels it explains) and
    ``clean_border`` (their share of the ring)."""
    _, height, width = lab.shape
    ring = _ring(height, width)
    basis = _basis(height, width)[:, ring].T  # P x 6
    values = lab[:, ring].T  # P x 3
    use = torch.ones(len(values), dtype=torch.bool)
    for _ in range(REFITS + 1):
        coefficients = torch.linalg.lstsq(basis[use], values[use]).solution
        residual = weighted_delta_e(values.T, (basis @ coefficients).T)
        noise = float(residual[use].median())
        use = residual <= max(RING_OUTLIER * noise, MIN_THRESHOLD)
    stats = {"residual": float(residual[use].median()), "clean_border": float(use.float().mean())}
    return coefficients, stats


def backdrop_surface(coefficients: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The fitted backdrop (CIELAB, 3 x H x W) of ``fit_backdrop``'s coefficients at another size."""
    return torch.einsum("kc,khw->chw", coefficients, _basis(height, width))


def _clean(raw: torch.Tensor) -> tuple[torch.Tensor, int]:
    pixels = raw.numel()
    mask = morphology.closing(morphology.opening(raw, OPEN_RADIUS), CLOSE_RADIUS)
    mask, pieces = morphology.keep_large_components(
        mask, relative=COMPONENT_RELATIVE, absolute=max(1, round(COMPONENT_MIN_SHARE * pixels))
    )
    return morphology.fill_holes(mask, max_area=round(HOLE_MAX_SHARE * int(mask.sum()))), pieces


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0


def border_matte(image: Image.Image, *, work_side: int = WORK_SIDE) -> BorderMatte:
    """Cut the product out of an RGB photo on a near-uniform backdrop (see the module docstring)."""
    rgb = to_tensor(image.convert("RGB"))
    _, height, width = rgb.shape
    scale = min(1.0, work_side / max(height, width))
    work_h, work_w = max(8, round(height * scale)), max(8, round(width * scale))
    small = F.interpolate(
        rgb[None].float(), size=(work_h, work_w), mode="bilinear", antialias=True, align_corners=False
    )[0]
    lab_small = srgb_to_lab(small.clamp(0, 255) / 255.0)
    coefficients, stats = fit_backdrop(lab_small)
    threshold = max(MIN_THRESHOLD, NOISE_MULTIPLE * stats["residual"])
    distance = weighted_delta_e(lab_small, backdrop_surface(coefficients, work_h, work_w))

    mask, pieces = _clean(distance > threshold)
    share = float(mask.float().mean())
    frame = torch.cat((mask[0], mask[-1], mask[:, 0], mask[:, -1]))
    stability = min(_iou(mask, _clean(distance > threshold * factor)[0]) for factor in STABILITY_FACTORS)
    stats.update(
        threshold=threshold, foreground_share=share, pieces=float(pieces), stability=stability,
        frame_contact=float(frame.float().mean()),
    )
    reasons = _verdict(stats)

    # Full resolution: sure inside / sure outside from the cleaned mask eroded / dilated by one working
    # pixel; in the band between, the photo's own distances at full resolution decide.
    sure_fg = morphology.resize_nearest(morphology.erode(mask, 1), height, width)
    sure_bg = morphology.resize_nearest(~morphology.dilate(mask, 1), height, width)
    band = ~(sure_fg | sure_bg)
    alpha = sure_fg.float()
    if bool(band.any()):
        # Only band pixels need the full-resolution colour distance (a thin ring around the product).
        lab_band = srgb_to_lab(rgb[:, band][:, :, None])[:, :, 0]
        basis = _basis(height, width)[:, band]
        distance_band = weighted_delta_e(lab_band, coefficients.T @ basis)
        alpha[band] = ((distance_band / threshold - (1.0 - EDGE)) / (2 * EDGE)).clamp(0.0, 1.0)
    return BorderMatte(
        alpha=alpha, confident=not reasons, reasons=reasons, coefficients=coefficients, stats=stats
    )


def _verdict(stats: dict[str, float]) -> list[str]:
    reasons = []
    if stats["residual"] > MAX_BACKDROP_RESIDUAL:
        reasons.append(f"backdrop not uniform (residual {stats['residual']:.1f} > {MAX_BACKDROP_RESIDUAL})")
    if stats["clean_border"] < MIN_CLEAN_BORDER:
        reasons.append(f"product covers the border ({1 - stats['clean_border']:.0%} of it)")
    if stats["frame_contact"] > MAX_FRAME_CONTACT:
        reasons.append(f"product cut by the frame ({stats['frame_contact']:.0%} of its edge)")
    low, high = FOREGROUND_SHARE
    if not low <= stats["foreground_share"] <= high:
        reasons.append(f"product share {stats['foreground_share']:.0%} outside {low:.0%}..{high:.0%}")
    if stats["pieces"] > MAX_PIECES or stats["pieces"] < 1:
        reasons.append(f"{int(stats['pieces'])} pieces")
    if stats["stability"] < MIN_STABILITY:
        reasons.append(f"mask unstable under the threshold (IoU {stats['stability']:.2f})")
    return reasons
