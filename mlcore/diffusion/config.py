"""Configuration of the "ddpm" kind, carried as a plain dict inside every checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..conditioning.class_ids import ClassConditioned

DIFFUSION_KINDS = ("ddpm",)
IMAGE_SIZES = (64, 128)
SCHEDULES = ("cosine",)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class DiffusionConfig(ClassConditioned):
    """Shape, noise schedule and sampling settings of a class-conditional diffusion model.

    ``classes[i]`` is the label of class id ``i``, as in ``GANConfig``; the
    network's class embedding has one more row, ``null_class`` (id
    ``num_classes``), the "no class" input of classifier-free guidance. In
    training the class is replaced by it with probability ``cond_drop``.

    ``timesteps`` is the length T of the training noise schedule ("cosine",
    Nichol & Dhariwal 2021). Sampling runs ``sample_steps`` deterministic DDIM
    steps (eta = 0) and mixes the predictions as
    eps = eps_null + guidance * (eps_class - eps_null): 0 is unconditional,
    1 plain conditional, > 1 stronger class adherence.

    ``width`` is the UNet's base channel count. 32 (2.3M parameters) measured
    0.31 s per training step at 64 px, batch 32 on a 2-core CPU (0.78 s at
    128 px), and 4.7 s for 16 images of 64 px at 50 guided DDIM steps.
    """

    classes: list[str] = field(default_factory=list)
    image_size: int = 64
    width: int = 32
    timesteps: int = 1000
    schedule: str = "cosine"
    sample_steps: int = 50
    guidance: float = 2.0
    cond_drop: float = 0.1
    kind: str = "ddpm"

    def __post_init__(self) -> None:
        self._check_classes()
        if self.image_size not in IMAGE_SIZES or not _is_int(self.image_size):
            raise ValueError(f"image_size must be one of {IMAGE_SIZES}, got {self.image_size!r}")
        if not _is_int(self.width) or self.width < 1:
            raise ValueError(f"width must be a positive int, got {self.width!r}")
        if not _is_int(self.timesteps) or self.timesteps < 2:
            raise ValueError(f"timesteps must be an int >= 2, got {self.timesteps!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if not _is_int(self.sample_steps) or not 1 <= self.sample_steps <= self.timesteps:
            raise ValueError(f"sample_steps must be an int in [1, timesteps={self.timesteps}], got {self.sample_steps!r}")
        for key in ("guidance", "cond_drop"):
            value = getattr(self, key)
            if not _is_number(value):
                raise ValueError(f"{key} must be a number, got {value!r}")
            setattr(self, key, float(value))
        if not self.guidance >= 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        if not 0.0 <= self.cond_drop <= 1.0:
            raise ValueError(f"cond_drop must be in [0, 1], got {self.cond_drop}")
        if self.cond_drop == 0.0 and self.guidance != 1.0:
            raise ValueError(
                "guidance other than 1 needs cond_drop > 0: the null class is never trained otherwise"
            )
        if self.kind not in DIFFUSION_KINDS:
            raise ValueError(f"kind must be one of {DIFFUSION_KINDS}, got {self.kind!r}")

    @property
    def null_class(self) -> int:
        """Class id of "no class" (the unconditional input of classifier-free guidance)."""
        return len(self.classes)

    @property
    def z_dim(self) -> int:
        """Size of the seeded noise vector: 3 * S * S, reshaped into the initial image x_T."""
        return 3 * self.image_size * self.image_size
