"""The "look" of a set of photos: colour and tone statistics in CIELAB, as plain JSON-ready data.

A photo is described on a copy resampled to ``STATS_SIDE`` x ``STATS_SIDE`` with a box filter (every source
pixel weighs the same, so aspect ratio and resolution do not change the description, and a 24 MP photo
costs what a thumbnail costs). Transparent pixels (alpha < 50 %) are left out. Per photo:

* ``quantiles``: for each of L*, a*, b* and chroma C* = sqrt(a*^2 + b*^2), the values at the ``LEVELS``
  probabilities (k + 0.5) / LEVELS, k = 0 .. LEVELS - 1 (sample j of n sorted sits at (j + 0.5) / n,
  linear in between; the ends are clamped to the extreme samples);
* ``mean`` and ``std`` of L*, a*, b* (population std);
* ``zones``: the mean a* and b* of the darkest, ..., brightest ``ZONES``-th of the pixels (by L*), which
  the marginals miss: a split-tone (warm highlights, cool shadows) changes them and not the a*/b* marginals.

The look of several photos averages these per photo: averaging quantile functions is the Wasserstein-2
barycentre of the marginals (for 1-D distributions), i.e. the "typical" distribution of the set, and lets
every reference count the same whatever its size or background share; ``std`` is averaged alike (the
barycentre of a location-scale family has the mean scale).

A ``Look`` is a dict of plain floats and lists (see ``check_look`` for its exact shape), so a web app can
store it as JSON and hand it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import torch
from PIL import Image

from ..background.images import prepare
from ..cielab import srgb_to_lab

LOOK_VERSION = 1
LOOK_SPACE = "CIELAB-D65"
STATS_SIDE = 64
LEVELS = 32
ZONES = 4
CHANNELS = ("L", "a", "b", "C")
# Pixels at least this opaque count; the rest are cut-out background whose RGB is arbitrary.
OPAQUE = 0.5
# Network input scaling: CIELAB values / 100 are of order one.
VECTOR_SCALE = 100.0
VECTOR_SIZE = len(CHANNELS) * LEVELS + 3 + 3 + 2 * ZONES


class Look(TypedDict):
    """JSON shape: {"version": 1, "space": "CIELAB-D65", "images": n, "levels": [LEVELS floats],
    "quantiles": {"L": [...], "a": [...], "b": [...], "C": [...]} (LEVELS floats each, non-decreasing),
    "mean": [L, a, b], "std": [L, a, b], "zones": {"a": [ZONES floats], "b": [ZONES floats]}}."""

    version: int
    space: str
    images: int
    levels: list[float]
    quantiles: dict[str, list[float]]
    mean: list[float]
    std: list[float]
    zones: dict[str, list[float]]


def levels() -> torch.Tensor:
    """The quantile probabilities (k + 0.5) / LEVELS."""
    return (torch.arange(LEVELS, dtype=torch.float64) + 0.5) / LEVELS


def sorted_quantiles(sorted_values: torch.Tensor, count: int = LEVELS) -> torch.Tensor:
    """Quantiles at (k + 0.5) / count of values sorted along the last dim (differentiable in the values)."""
    n = sorted_values.shape[-1]
    position = ((torch.arange(count, dtype=torch.float64, device=sorted_values.device) + 0.5) / count * n - 0.5)
    position = position.clamp(0.0, n - 1.0)
    low = position.floor().long()
    high = (low + 1).clamp_max(n - 1)
    frac = (position - low).to(sorted_values.dtype)
    return sorted_values[..., low] * (1.0 - frac) + sorted_values[..., high] * frac


def lab_statistics(lab: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-photo statistics of CIELAB pixel lists ``lab`` (N x 3 x P, P >= ZONES), as tensors:
    quantiles N x 4 x LEVELS (L*, a*, b*, C*), mean N x 3, std N x 3, zones N x 2 x ZONES (a*, b*).
    Differentiable in ``lab`` (sorting passes gradients to the values)."""
    if lab.dim() != 3 or lab.shape[1] != 3 or lab.shape[2] < ZONES:
        raise ValueError(f"lab must be N x 3 x P with P >= {ZONES}, got {tuple(lab.shape)}")
    chroma = torch.sqrt(lab[:, 1] ** 2 + lab[:, 2] ** 2 + 1e-12)
    channels = torch.cat([lab, chroma[:, None]], dim=1)
    ordered, _ = channels.sort(dim=-1)
    quantiles = sorted_quantiles(ordered)
    order = lab[:, 0].argsort(dim=-1)
    by_lightness = lab[:, 1:].gather(-1, order[:, None].expand(-1, 2, -1))
    bounds = [round(z * lab.shape[2] / ZONES) for z in range(ZONES + 1)]
    zones = torch.stack([by_lightness[..., lo:hi].mean(-1) for lo, hi in zip(bounds[:-1], bounds[1:])], dim=-1)
    return {
        "quantiles": quantiles,
        "mean": lab.mean(-1),
        "std": lab.std(-1, unbiased=False),
        "zones": zones,
    }


def combine(stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The look of a set from its photos' statistics: every tensor averaged over the first (photo) dim."""
    return {key: value.mean(0) for key, value in stats.items()}


def reference_noise(images: int) -> float:
    """How far a look of ``images`` photos may stray from the grade by their content alone, 1 / sqrt(images)
    (the standard error of a mean): a network input, so the model can trust a look of many references more."""
    return 1.0 / math.sqrt(images)


def vector(stats: dict[str, torch.Tensor]) -> torch.Tensor:
    """Statistics (batched, ... leading dims) flattened into the network's look vector (... x VECTOR_SIZE)."""
    lead = stats["mean"].shape[:-1]
    parts = [stats[key].reshape(*lead, -1) for key in ("quantiles", "mean", "std", "zones")]
    return torch.cat(parts, dim=-1).float() / VECTOR_SCALE


def stats_pixels(image: Image.Image) -> torch.Tensor:
    """The pixels a photo is described by: CIELAB 3 x P of its STATS_SIDE-square box-resampled copy,
    transparent ones left out (all of them kept when nothing is opaque, so a look always exists)."""
    rgb, alpha = prepare(image)
    side = (STATS_SIDE, STATS_SIDE)
    small = torch.frombuffer(bytearray(rgb.resize(side, Image.Resampling.BOX).tobytes()), dtype=torch.uint8)
    lab = srgb_to_lab(small.view(STATS_SIDE, STATS_SIDE, 3).permute(2, 0, 1).float() / 255.0).reshape(3, -1)
    if alpha is not None:
        weight = torch.frombuffer(bytearray(alpha.resize(side, Image.Resampling.BOX).tobytes()), dtype=torch.uint8)
        keep = weight.float() / 255.0 >= OPAQUE
        if int(keep.sum()) >= ZONES:
            lab = lab[:, keep]
    return lab


def statistics_of(image: Image.Image) -> dict[str, torch.Tensor]:
    """One photo's statistics as tensors (no photo dim), see ``lab_statistics``."""
    return {key: value[0] for key, value in lab_statistics(stats_pixels(image)[None].double()).items()}


def to_look(stats: dict[str, torch.Tensor], images: int) -> Look:
    """Plain-data ``Look`` of (combined, unbatched) statistics."""
    q = stats["quantiles"].tolist()
    zones = stats["zones"].tolist()
    return {
        "version": LOOK_VERSION,
        "space": LOOK_SPACE,
        "images": int(images),
        "levels": levels().tolist(),
        "quantiles": {name: [float(v) for v in q[i]] for i, name in enumerate(CHANNELS)},
        "mean": [float(v) for v in stats["mean"].tolist()],
        "std": [float(v) for v in stats["std"].tolist()],
        "zones": {"a": [float(v) for v in zones[0]], "b": [float(v) for v in zones[1]]},
    }


def look_of(images: Sequence[Image.Image]) -> Look:
    """The look of reference photos (at least one): their statistics averaged, photo by photo."""
    images = list(images)
    if not images:
        raise ValueError("a look needs at least one reference photo")
    per_photo = [statistics_of(image) for image in images]
    stacked = {key: torch.stack([s[key] for s in per_photo]) for key in per_photo[0]}
    return to_look(combine(stacked), len(images))


def _floats(value: Any, count: int, where: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise ValueError(f"look {where} must be a list of {count} numbers")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not math.isfinite(item):
            raise ValueError(f"look {where} must hold finite numbers, got {item!r}")
        out.append(float(item))
    return out


def check_look(data: Any) -> Look:
    """``data`` (e.g. read back from JSON) as a ``Look``; ``ValueError`` saying what is wrong otherwise."""
    if not isinstance(data, Mapping):
        raise ValueError(f"a look must be a dict, got {type(data).__name__}")
    if data.get("version") != LOOK_VERSION or data.get("space") != LOOK_SPACE:
        raise ValueError(
            f"look version/space {data.get('version')!r}/{data.get('space')!r} is not {LOOK_VERSION}/{LOOK_SPACE}"
        )
    images = data.get("images")
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise ValueError(f"look 'images' must be a positive int, got {images!r}")
    quantiles = data.get("quantiles")
    zones = data.get("zones")
    if not isinstance(quantiles, Mapping) or set(quantiles) != set(CHANNELS):
        raise ValueError(f"look 'quantiles' must map exactly {CHANNELS} to lists")
    if not isinstance(zones, Mapping) or set(zones) != {"a", "b"}:
        raise ValueError("look 'zones' must map exactly 'a' and 'b' to lists")
    look: Look = {
        "version": LOOK_VERSION,
        "space": LOOK_SPACE,
        "images": images,
        "levels": _floats(data.get("levels"), LEVELS, "'levels'"),
        "quantiles": {name: _floats(quantiles[name], LEVELS, f"quantiles[{name!r}]") for name in CHANNELS},
        "mean": _floats(data.get("mean"), 3, "'mean'"),
        "std": _floats(data.get("std"), 3, "'std'"),
        "zones": {name: _floats(zones[name], ZONES, f"zones[{name!r}]") for name in ("a", "b")},
    }
    if any(abs(a - b) > 1e-9 for a, b in zip(look["levels"], levels().tolist())):
        raise ValueError(f"look 'levels' must be (k + 0.5) / {LEVELS}")
    for name in CHANNELS:
        values = look["quantiles"][name]
        if any(b < a - 1e-6 for a, b in zip(values, values[1:])):
            raise ValueError(f"look quantiles[{name!r}] must not decrease")
    return look


def look_tensors(look: Look) -> dict[str, torch.Tensor]:
    """A checked ``Look`` back as (unbatched, float64) statistics tensors."""
    look = check_look(look)
    return {
        "quantiles": torch.tensor([look["quantiles"][name] for name in CHANNELS], dtype=torch.float64),
        "mean": torch.tensor(look["mean"], dtype=torch.float64),
        "std": torch.tensor(look["std"], dtype=torch.float64),
        "zones": torch.tensor([look["zones"]["a"], look["zones"]["b"]], dtype=torch.float64),
    }
