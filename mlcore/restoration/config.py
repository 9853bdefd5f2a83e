"""Configuration of the restoration model ("restore"), carried as a plain dict inside every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..plain_config import PlainConfig

from .degrade import MIX_KINDS

KIND = "restore"


@dataclass
class RestorationConfig(PlainConfig):
    """Shape of the two networks and what the trainer feeds them.

    ``width`` is the channel count at the finest level of the local UNet (it works at half resolution on
    2x2 pixel patches) and doubles at each of ``levels`` - 1 coarser levels; ``blocks`` residual blocks sit at
    each level on the way down and on the way up. ``tone_width`` is the base width of the global tone network.
    ``crop_size`` is the side of the training crops; ``degradations`` the kinds the training mix draws from.
    ``ssim_weight`` and ``tone_weight`` weight the loss terms (see ``objective``).
    """

    width: int = 32
    levels: int = 3
    blocks: int = 1
    tone_width: int = 16
    crop_size: int = 128
    degradations: list[str] = field(default_factory=lambda: list(MIX_KINDS))
    ssim_weight: float = 0.05
    tone_weight: float = 0.1
    kind: str = KIND

    def __post_init__(self) -> None:
        for key in ("width", "levels", "blocks", "tone_width", "crop_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        if not 1 <= self.levels <= 4:
            raise ValueError(f"levels must be 1-4, got {self.levels}")
        if self.crop_size % self.alignment or self.crop_size % 4 or self.crop_size < 32:
            raise ValueError(
                f"crop_size must be >= 32 and a multiple of {max(self.alignment, 4)} "
                f"(the network's alignment and the x4 downscale), got {self.crop_size}"
            )
        self.degradations = list(self.degradations)
        unknown = [d for d in self.degradations if d not in MIX_KINDS]
        if unknown or not self.degradations or len(set(self.degradations)) != len(self.degradations):
            raise ValueError(f"degradations must be distinct names from {MIX_KINDS}, got {self.degradations}")
        for key in ("ssim_weight", "tone_weight"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{key} must be a number >= 0, got {value!r}")
            setattr(self, key, float(value))
        if self.kind != KIND:
            raise ValueError(f"RestorationConfig.kind must be {KIND!r}, got {self.kind!r}")

    @property
    def alignment(self) -> int:
        """Input sides and tile origins must be multiples of this: 2 (pixel patches) x 2 per coarser level."""
        return 2**self.levels
