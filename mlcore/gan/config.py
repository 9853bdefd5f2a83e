"""The model configuration that travels inside every checkpoint.

Like nanoGPT, a checkpoint carries the plain-dict form of this dataclass so it
can rebuild its own networks without the code that trained it guessing shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..conditioning.class_ids import ClassConditioned

LOSSES = ("hinge", "nonsaturating")
AUGMENTATIONS = ("color", "translation", "cutout")


@dataclass
class GANConfig(ClassConditioned):
    """Shape and objective of a class-conditional GAN.

    ``classes[i]`` is the label of class id ``i``; the order is part of the
    model, since embeddings are indexed by it.
    """

    classes: list[str] = field(default_factory=list)
    image_size: int = 64
    z_dim: int = 128
    # Base channel widths. 32/32 measured at ~0.2 s per step (batch 32, 64 px)
    # on a 2-core CPU, which is what the demo's training budget allows.
    g_width: int = 32
    d_width: int = 32
    loss: str = "hinge"
    augment: str = "color,translation,cutout"
    kind: str = "cgan"

    # The one kind name this config class describes (subclasses describe others).
    KIND = "cgan"

    def __post_init__(self) -> None:
        self._check_classes()
        size = self.image_size
        if not isinstance(size, int) or size < 32 or size & (size - 1):
            raise ValueError(f"image_size must be a power of 2 and >= 32, got {size!r}")
        for name in ("z_dim", "g_width", "d_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        unknown = [p for p in self.augment_policy if p not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation(s) {unknown}; known: {AUGMENTATIONS}")
        if self.kind != self.KIND:
            raise ValueError(f"{type(self).__name__}.kind must be {self.KIND!r}, got {self.kind!r}")

    @property
    def augment_policy(self) -> list[str]:
        """The DiffAugment policy as a list of names ([] when off)."""
        return [p.strip() for p in self.augment.split(",") if p.strip()]
