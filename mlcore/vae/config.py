"""Configuration of the "vae" and "cvae" kinds, carried as a plain dict inside every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..conditioning.class_ids import ClassConditioned

VAE_KINDS = ("vae", "cvae")
IMAGE_SIZES = (64, 128)


@dataclass
class VAEConfig(ClassConditioned):
    """Shape and objective of a (optionally class-conditional) convolutional VAE.

    ``classes[i]`` is the label of class id ``i``, as in ``GANConfig``. The "vae"
    kind ignores the class in its networks but still keeps the list, so callers
    can route categories to it and it refuses categories it never saw.

    Likelihood: p(x|z) = N(x; decoder(z), recon_sigma^2 I) on pixels scaled to
    [-1, 1]; the decoder ends in tanh. ``beta`` weights the KL term (1 = ELBO) and
    ``kl_warmup_steps`` ramps that weight linearly from ~0 over the first steps.
    """

    classes: list[str] = field(default_factory=list)
    image_size: int = 64
    latent_dim: int = 128
    enc_width: int = 32
    dec_width: int = 32
    recon_sigma: float = 0.1
    beta: float = 1.0
    kl_warmup_steps: int = 0
    kind: str = "vae"

    def __post_init__(self) -> None:
        self._check_classes()
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {self.image_size!r}")
        for key in ("latent_dim", "enc_width", "dec_width"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        if isinstance(self.kl_warmup_steps, bool) or not isinstance(self.kl_warmup_steps, int) or self.kl_warmup_steps < 0:
            raise ValueError(f"kl_warmup_steps must be an int >= 0, got {self.kl_warmup_steps!r}")
        for key in ("recon_sigma", "beta"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{key} must be a number, got {value!r}")
            setattr(self, key, float(value))
        if not self.recon_sigma > 0:
            raise ValueError(f"recon_sigma must be > 0, got {self.recon_sigma}")
        if not self.beta >= 0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.kind not in VAE_KINDS:
            raise ValueError(f"kind must be one of {VAE_KINDS}, got {self.kind!r}")

    @property
    def conditional(self) -> bool:
        """Whether encoder and decoder take the class ("cvae")."""
        return self.kind == "cvae"

    @property
    def z_dim(self) -> int:
        """Alias of ``latent_dim``, the name ``GANConfig`` uses for its noise size."""
        return self.latent_dim


@dataclass
class CVAEConfig(VAEConfig):
    """``VAEConfig`` of the class-conditional kind: ``kind`` defaults to (and must be) "cvae"."""

    kind: str = "cvae"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kind != "cvae":
            raise ValueError(f"CVAEConfig.kind must be 'cvae', got {self.kind!r}")


def config_from_dict(data: dict[str, Any]) -> VAEConfig:
    """The config class matching ``data['kind']`` ("vae" or "cvae"), rebuilt from ``data``."""
    kind = data.get("kind", "vae") if isinstance(data, dict) else None
    return (CVAEConfig if kind == "cvae" else VAEConfig).from_dict(data)
