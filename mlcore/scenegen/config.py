"""Configuration of the scene generator ("scenes"), carried as a plain dict inside every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass

from ..augment import parse_policy
from ..gan.config import LOSSES
from ..plain_config import PlainConfig

KIND = "scenes"


@dataclass
class SceneGANConfig(PlainConfig):
    """Shape and objective of the unconditional scene GAN.

    ``image_size``: the side of the square backdrops it draws (a power of 2, >= 32). ``z_dim``: the noise.
    ``g_width`` / ``d_width``: the channel widths at the second-finest level (``networks`` doubles them per
    coarser level up to ``MAX_MULT`` times; the finest generator level has half). ``loss``: "hinge" or
    "nonsaturating", on logits (``mlcore.gan.objective``). ``augment``: the DiffAugment policy applied to real
    and generated images alike. ``recon_weight``: weight of the discriminator's self-supervised
    reconstruction loss (FastGAN; 0 switches the decoder off, which also leaves it out of the network).
    """

    image_size: int = 256
    z_dim: int = 128
    g_width: int = 16
    d_width: int = 16
    loss: str = "hinge"
    augment: str = "color,translation,cutout"
    recon_weight: float = 1.0
    kind: str = KIND

    def __post_init__(self) -> None:
        size = self.image_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size & (size - 1):
            raise ValueError(f"image_size must be a power of 2 and >= 32, got {size!r}")
        for name in ("z_dim", "g_width", "d_width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                raise ValueError(f"{name} must be an int >= 2, got {value!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        parse_policy(self.augment)
        weight = self.recon_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
            raise ValueError(f"recon_weight must be a number >= 0, got {weight!r}")
        self.recon_weight = float(weight)
        if self.kind != KIND:
            raise ValueError(f"SceneGANConfig.kind must be {KIND!r}, got {self.kind!r}")
