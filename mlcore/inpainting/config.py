"""Configuration of the inpainting model ("inpaint"), carried as a plain dict inside every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..plain_config import PlainConfig

KIND = "inpaint"


@dataclass
class InpaintConfig(PlainConfig):
    """Shape of the network and what the trainer feeds it.

    ``width`` channels at the finest level (half resolution: the network reads 2 x 2 pixel patches), doubling at
    each of ``levels`` - 1 coarser levels; at the coarsest level one residual block per entry of ``dilations``
    with that dilation, so a hole's centre sees context far beyond its edge. ``crop_size`` is the side of the
    training crops. ``hole_weight`` and ``valid_weight`` weight the L1 loss inside and outside the hole
    (``objective``).
    """

    width: int = 32
    levels: int = 3
    dilations: list[int] = field(default_factory=lambda: [2, 4, 8, 1])
    crop_size: int = 128
    hole_weight: float = 6.0
    valid_weight: float = 1.0
    kind: str = KIND

    def __post_init__(self) -> None:
        for key in ("width", "levels", "crop_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        if not 1 <= self.levels <= 4:
            raise ValueError(f"levels must be 1-4, got {self.levels}")
        if self.crop_size % self.alignment or self.crop_size < 32:
            raise ValueError(f"crop_size must be >= 32 and a multiple of {self.alignment}, got {self.crop_size}")
        self.dilations = list(self.dilations)
        if not self.dilations or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in self.dilations):
            raise ValueError(f"dilations must be a non-empty list of positive ints, got {self.dilations!r}")
        for key in ("hole_weight", "valid_weight"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")
            setattr(self, key, float(value))
        if self.hole_weight == 0:
            raise ValueError("hole_weight must be > 0: the hole is what the network learns to fill")
        if self.kind != KIND:
            raise ValueError(f"InpaintConfig.kind must be {KIND!r}, got {self.kind!r}")

    @property
    def alignment(self) -> int:
        """Input sides must be multiples of this: 2 (pixel patches) x 2 per coarser level."""
        return 2**self.levels
