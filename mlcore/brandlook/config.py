"""Configuration of the brand-look model ("brandlook"), carried as a plain dict inside every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from ..plain_config import PlainConfig

from .basis import basis_count

KIND = "brandlook"


@dataclass
class BrandLookConfig(PlainConfig):
    """Shapes of the adaptive LUT model and what its trainer feeds it.

    A photo's table (``lut_size`` nodes per axis) is the identity plus a weighted sum of the fixed analytic
    tables of ``basis`` (tone curves with ``curve_knots`` knots per channel, a colour matrix, luma-dependent
    casts and saturation with ``luma_knots`` knots) and of ``learned_luts`` learned residual tables. A small CNN
    predicts the weights from a ``thumb_size`` square copy of the photo (``width`` channels in its first layer),
    the photo's own look and the target look (an MLP of ``hidden`` units). ``train_size`` is the square side
    training photos are stored and graded at; keep it ``look.STATS_SIDE`` so that training measures looks
    as inference does.

    Loss weights (see ``objective``): ``smooth_weight`` (curvature of the tables), ``monotone_weight``
    (tables that decrease along their own channel), ``stats_weight`` (W1 of the result's marginals to the
    target look). ``stats_weight`` trades how closely the selection's colour statistics match the look against
    how faithfully the grade alone is carried over (a product's own colours kept): in a 3-minute benchmark
    run (30 photos), 0 gave 48 % less distance to the look and mean delta E 7.6 to the true grade, 0.3 gave
    67 % and 8.4. ``self_look_p`` is the share of training samples whose look is the target photo's own rather
    than that of other photos graded alike; ``max_references`` the most reference photos per look.
    """

    lut_size: int = 17
    curve_knots: int = 9
    luma_knots: int = 5
    learned_luts: int = 8
    thumb_size: int = 32
    width: int = 16
    hidden: int = 256
    train_size: int = 64
    smooth_weight: float = 1.0
    monotone_weight: float = 10.0
    stats_weight: float = 0.3
    self_look_p: float = 0.3
    max_references: int = 5
    kind: str = KIND

    def __post_init__(self) -> None:
        for key in ("lut_size", "curve_knots", "luma_knots", "thumb_size", "width", "hidden", "train_size", "max_references"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        if self.lut_size < 2:
            raise ValueError(f"lut_size must be >= 2, got {self.lut_size}")
        if isinstance(self.learned_luts, bool) or not isinstance(self.learned_luts, int) or self.learned_luts < 0:
            raise ValueError(f"learned_luts must be an int >= 0, got {self.learned_luts!r}")
        if self.curve_knots < 2 or self.luma_knots < 2:
            raise ValueError(f"curve_knots and luma_knots must be >= 2, got {self.curve_knots} and {self.luma_knots}")
        # Three stride-2 convolutions and a whole number of thumbnail pixels per training pixel.
        if self.thumb_size % 8 or self.train_size % self.thumb_size:
            raise ValueError(
                f"thumb_size must be a multiple of 8 dividing train_size, got {self.thumb_size} and {self.train_size}"
            )
        for key in ("smooth_weight", "monotone_weight", "stats_weight", "self_look_p"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")
            setattr(self, key, float(value))
        if self.self_look_p > 1:
            raise ValueError(f"self_look_p must be in [0, 1], got {self.self_look_p}")
        if self.kind != KIND:
            raise ValueError(f"BrandLookConfig.kind must be {KIND!r}, got {self.kind!r}")

    @property
    def num_tables(self) -> int:
        """Tables mixed per photo (analytic and learned, the identity not counted): the weights predicted."""
        return basis_count(self.curve_knots, self.luma_knots) + self.learned_luts
