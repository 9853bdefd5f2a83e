"""Where the product goes in a scene: canvas aspect and size, how much of it the product fills, and
the floor line it stands on. Pure arithmetic on sizes; no pixels.

Coordinates are shares of the canvas: ``x`` 0 = left edge, 1 = right edge; ``floor`` 0 = top,
1 = bottom. The product's bounding box stands with its bottom edge on the floor line, centred on
``x``, and fills ``fill`` of the canvas along the side that limits it (a tall bottle on a square:
its height is ``fill`` of the side; a pair of shoes: their width is).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Width : height; None = the photo's own aspect.
ASPECTS: dict[str, tuple[int, int] | None] = {
    "original": None,
    "1:1": (1, 1),
    "4:5": (4, 5),
    "3:4": (3, 4),
    "16:9": (16, 9),
}
MAX_SIDE = 8192
DEFAULT_MIN_LONG_SIDE = 1024
# A white marketplace image centres the product; with the box's bottom on the floor line that is
# floor = (1 + fill) / 2 for a product whose height limits it (0.925 at fill 0.85).
_WHITE_FLOOR = 0.925


def finite(name: str, value: object) -> float:
    """``value`` as a float, or a ValueError naming ``name`` when it is not a finite number (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Layout:
    """How the product sits on the canvas (see the module docstring).

    ``aspect``: a key of ``ASPECTS``. ``fill``: share of the canvas's limiting side the product's
    box fills, in (0, 1]. ``floor``: y share of the floor line, in [0.1, 1]. ``x``: horizontal
    centre share, in [0, 1]. ``long_side``: the canvas's long side in pixels (16..8192), or None to
    keep the photo's own pixel scale (see ``canvas_for``)."""

    aspect: str = "1:1"
    fill: float = 0.7
    floor: float = 0.88
    x: float = 0.5
    long_side: int | None = None

    def __post_init__(self) -> None:
        if self.aspect not in ASPECTS:
            raise ValueError(f"aspect must be one of {sorted(ASPECTS)}, got {self.aspect!r}")
        if not 0.0 < finite("fill", self.fill) <= 1.0:
            raise ValueError(f"fill must be in (0, 1], got {self.fill!r}")
        if not 0.1 <= finite("floor", self.floor) <= 1.0:
            raise ValueError(f"floor must be in [0.1, 1], got {self.floor!r}")
        if not 0.0 <= finite("x", self.x) <= 1.0:
            raise ValueError(f"x must be in [0, 1], got {self.x!r}")
        long_side = self.long_side
        if long_side is not None and (
            isinstance(long_side, bool) or not isinstance(long_side, int) or not 16 <= long_side <= MAX_SIDE
        ):
            raise ValueError(f"long_side must be None or an int in 16..{MAX_SIDE}, got {self.long_side!r}")


@dataclass(frozen=True)
class Preset:
    """A named output format: what a marketplace or a social network wants.

    ``backdrop``: "white" forces a pure #FFFFFF backdrop (marketplace main images); None uses the
    scene. ``floor``: where the product stands (white presets centre a tall product)."""

    name: str
    label: str
    aspect: str
    long_side: int
    backdrop: str | None
    fill: float
    floor: float = 0.88

    def layout(self, *, x: float = 0.5) -> Layout:
        """This preset as a ``Layout`` (validated)."""
        return Layout(aspect=self.aspect, fill=self.fill, floor=self.floor, x=x, long_side=self.long_side)


def _presets(*presets: Preset) -> dict[str, Preset]:
    for preset in presets:
        preset.layout()  # every preset must make a valid layout
    return {preset.name: preset for preset in presets}


PRESETS: dict[str, Preset] = _presets(
    Preset("marketplace-white-2000", "Marketplace main image: white, square, 2000 px (Amazon style)",
           "1:1", 2000, "white", 0.85, _WHITE_FLOOR),
    Preset("taobao-white-800", "Taobao / Tmall main image: white, square, 800 px",
           "1:1", 800, "white", 0.85, _WHITE_FLOOR),
    Preset("jd-white-800", "JD.com main image: white, square, 800 px", "1:1", 800, "white", 0.85, _WHITE_FLOOR),
    Preset("square-1080", "Social post: square, 1080 px, in the scene", "1:1", 1080, None, 0.7),
    Preset("portrait-1350", "Social portrait post: 1080 x 1350, in the scene", "4:5", 1350, None, 0.7),
    Preset("banner-1920", "Web banner: 16:9, 1920 x 1080, in the scene", "16:9", 1920, None, 0.5),
)


def _check_size(name: str, size: tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = size
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be (width, height), got {size!r}") from None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in (width, height)):
        raise ValueError(f"{name} must be two positive ints, got {size!r}")
    return width, height


def _ratio(layout: Layout, photo_size: tuple[int, int]) -> tuple[float, float]:
    aspect = ASPECTS[layout.aspect]
    return (float(photo_size[0]), float(photo_size[1])) if aspect is None else (float(aspect[0]), float(aspect[1]))


def _sides(ratio: tuple[float, float], long_side: float) -> tuple[int, int]:
    """(width, height) with the given long side, the short side rounded to keep the ratio."""
    rw, rh = ratio
    if rw >= rh:
        width = max(1, round(long_side))
        return width, max(1, round(width * rh / rw))
    height = max(1, round(long_side))
    return max(1, round(height * rw / rh)), height


def plan_canvas(
    layout: Layout, photo_size: tuple[int, int], box_size: tuple[int, int], min_long_side: int = DEFAULT_MIN_LONG_SIDE
) -> tuple[tuple[int, int], float]:
    """((width, height), scale): the canvas ``canvas_for`` gives and the photo-to-canvas scale that
    makes the product's box fill ``layout.fill`` of it (exactly 1.0 when nothing is resampled)."""
    photo_size = _check_size("photo_size", photo_size)
    box_w, box_h = _check_size("box_size", box_size)
    if isinstance(min_long_side, bool) or not isinstance(min_long_side, int) or not 1 <= min_long_side <= MAX_SIDE:
        raise ValueError(f"min_long_side must be an int in 1..{MAX_SIDE}, got {min_long_side!r}")
    ratio = _ratio(layout, photo_size)

    def scale_for(canvas: tuple[int, int]) -> float:
        return layout.fill * min(canvas[0] / box_w, canvas[1] / box_h)

    if layout.long_side is not None:
        canvas = _sides(ratio, layout.long_side)
        return canvas, scale_for(canvas)
    # The smallest canvas of this aspect in which the box, unscaled, fills `fill` of the limiting
    # side; rounded up so the product keeps scale 1.0 and still fits.
    k = max(box_w / ratio[0], box_h / ratio[1]) / layout.fill
    canvas = (max(1, math.ceil(k * ratio[0] - 1e-9)), max(1, math.ceil(k * ratio[1] - 1e-9)))
    long_side = max(canvas)
    if long_side < min_long_side <= max(photo_size):
        # A high-resolution photo deserves a full-size canvas even if its product is small in it.
        canvas = _sides(ratio, min_long_side)
        return canvas, scale_for(canvas)
    if long_side > MAX_SIDE:
        canvas = _sides(ratio, MAX_SIDE)
        return canvas, scale_for(canvas)
    return canvas, 1.0


def canvas_for(
    layout: Layout, photo_size: tuple[int, int], box_size: tuple[int, int], min_long_side: int = DEFAULT_MIN_LONG_SIDE
) -> tuple[int, int]:
    """(width, height) of the scene's canvas for a photo of ``photo_size`` whose product box is
    ``box_size`` pixels.

    With ``layout.long_side`` set, that long side at the layout's aspect ("original": the photo's).
    Otherwise the canvas that keeps the photo's own pixel scale (no resampling) at ``layout.fill``,
    raised to ``min_long_side`` when that is smaller and the photo itself is at least that large,
    and capped at 8192 pixels."""
    return plan_canvas(layout, photo_size, box_size, min_long_side)[0]
