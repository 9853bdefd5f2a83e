"""Fit a (small, generated) backdrop to the scene's canvas and give it a photographer's depth of field.

A product shot is focused on the product: the floor where it stands is sharp, the far wall at the top
of the frame is soft, and the floor nearest the lens at the bottom edge a little soft too. A generated
backdrop is uniformly sharp (or uniformly soft once upscaled from 256 px), which reads as a flat
painting behind a pasted product. The blur is a blend, row by row, of a few copies blurred by
geometrically spaced sigmas (``filters.varying_blur``), so a 2000 px canvas takes a fraction of a second.

An upscaled backdrop is also too clean ("plastic") next to a real photo's sensor noise: ``grain``
adds a seeded, monochrome noise.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ..background.images import prepare, to_tensor
from .filters import varying_blur
from .layout import finite as _finite

# Blur sigma at the top of the frame, as a share of the canvas's long side, at depth_of_field 1
# (16 px at 2000 px): a wall a metre or two behind the product at f/4.
DOF_SIGMA = 0.008
# Rows within this share of the height of the floor line stay sharp (the product's depth).
FOCUS_BAND = 0.04
# The near floor at the bottom edge gets this share of the top's blur.
NEAR_SHARE = 0.35
# Above the floor the blur grows a little faster than linearly with height (perspective: the wall's
# distance grows faster near the horizon).
FAR_POWER = 1.3
MAX_DEPTH_OF_FIELD = 4.0
# The blurred rows are worked on a copy small enough that the widest blur is about this many of its
# pixels; a bilinear down-and-up round trip blurs by about _ROUND_TRIP of the scale factor.
_SMALL_SIGMA = 4.0
_ROUND_TRIP = 0.6
MAX_GRAIN = 0.2



def blur_profile(height: int, floor: float) -> torch.Tensor:
    """Share (0..1) of the full blur for each of ``height`` rows (float height x 1): 0 around the
    floor line, 1 at the top, ``NEAR_SHARE`` at the bottom."""
    y = (torch.arange(height, dtype=torch.float32)[:, None] + 0.5) / height
    far_span, near_span = max(floor - FOCUS_BAND, 1e-6), max(1.0 - floor - FOCUS_BAND, 1e-6)
    far = ((floor - FOCUS_BAND - y) / far_span).clamp(0.0, 1.0) ** FAR_POWER
    near = NEAR_SHARE * ((y - floor - FOCUS_BAND) / near_span).clamp(0.0, 1.0)
    return far + near


def _to_image(pixels: torch.Tensor) -> Image.Image:
    out = pixels.round().clamp(0, 255).to(torch.uint8)
    return Image.frombytes("RGB", (out.shape[2], out.shape[1]), out.permute(1, 2, 0).contiguous().numpy().tobytes())


def _depth_blur(fitted: Image.Image, top_sigma: float, floor: float) -> Image.Image:
    """``fitted`` blurred by ``top_sigma`` x ``blur_profile`` per row.

    The blurred rows are computed on a copy ``factor`` times smaller (their detail is gone anyway)
    and scaled back once; the sharp rows are the full-resolution pixels; rows whose blur is below
    what the round trip adds by itself blend the two. The full-resolution steps (resize, blend) are
    Pillow's, several times faster than torch's on a CPU: 2000 px in about a tenth of a second."""
    width, height = fitted.size
    profile = top_sigma * blur_profile(height, floor)
    factor = max(1, int(top_sigma // _SMALL_SIGMA))
    if factor == 1:
        return _to_image(varying_blur(to_tensor(fitted).float(), profile, top_sigma, border="replicate"))
    small_size = (max(1, round(width / factor)), max(1, round(height / factor)))
    small = to_tensor(fitted.resize(small_size, Image.Resampling.BILINEAR)).float()
    small_profile = F.interpolate(
        profile[None, None], size=(small_size[1], 1), mode="bilinear", align_corners=False
    )[0, 0]
    # The round trip itself blurs by about 0.6 x factor: subtract it in quadrature.
    residual = (small_profile.square() - (_ROUND_TRIP * factor) ** 2).clamp_min(0.0).sqrt() / factor
    soft = _to_image(varying_blur(small, residual, top_sigma / factor, border="replicate"))
    soft = soft.resize((width, height), Image.Resampling.BILINEAR)
    sharp_share = (1.0 - profile / (_ROUND_TRIP * factor)).clamp(0.0, 1.0)
    mask = (sharp_share * 255.0).round().to(torch.uint8).expand(height, width).contiguous()
    return Image.composite(fitted, soft, Image.frombytes("L", (width, height), mask.numpy().tobytes()))


def check_look(depth_of_field: float, grain: float, seed: int) -> None:
    """ValueError naming the argument unless ``fit_backdrop`` would accept these."""
    if not 0.0 <= _finite("depth_of_field", depth_of_field) <= MAX_DEPTH_OF_FIELD:
        raise ValueError(f"depth_of_field must be in [0, {MAX_DEPTH_OF_FIELD:g}], got {depth_of_field!r}")
    if not 0.0 <= _finite("grain", grain) <= MAX_GRAIN:
        raise ValueError(f"grain must be in [0, {MAX_GRAIN:g}], got {grain!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def fit_backdrop(
    backdrop: Image.Image,
    size: tuple[int, int],
    *,
    floor: float,
    depth_of_field: float = 1.0,
    grain: float = 0.0,
    seed: int = 0,
) -> Image.Image:
    """``backdrop`` scaled to cover ``size`` (width, height) with Lanczos and centre-cropped, then
    blurred by depth (see the module docstring) and grained. RGB.

    ``floor``: y share of the floor line (in focus), 0..1. ``depth_of_field``: 0 = everything sharp,
    1 = the default look, up to 4. ``grain``: standard deviation of the added noise as a share of
    full scale (0.01 is about 2.5 levels of 255), up to 0.2; ``seed`` makes it repeatable."""
    if not isinstance(backdrop, Image.Image):
        raise ValueError(f"backdrop must be a PIL image, got {type(backdrop).__name__}")
    try:
        width, height = size
    except (TypeError, ValueError):
        raise ValueError(f"size must be (width, height), got {size!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 20000 for v in (width, height)):
        raise ValueError(f"size must be two ints in 1..20000, got {size!r}")
    if not 0.0 <= _finite("floor", floor) <= 1.0:
        raise ValueError(f"floor must be in [0, 1], got {floor!r}")
    check_look(depth_of_field, grain, seed)
    rgb, _ = prepare(backdrop)
    fitted = ImageOps.fit(rgb, (width, height), method=Image.Resampling.LANCZOS)
    if depth_of_field > 0:
        fitted = _depth_blur(fitted, depth_of_field * DOF_SIGMA * max(width, height), floor)
    if grain == 0:
        return fitted
    generator = torch.Generator().manual_seed(int(seed))
    # Monochrome: colour noise looks like a cheap sensor, luminance grain like film or a good one.
    noise = (torch.randn(1, height, width, generator=generator) * (grain * 255.0)).round().to(torch.int16)
    pixels = (to_tensor(fitted).to(torch.int16) + noise).clamp(0, 255).to(torch.uint8)
    return Image.frombytes("RGB", (width, height), pixels.permute(1, 2, 0).contiguous().numpy().tobytes())
