"""Configuration of the harmonisation model ("harmonise"), carried as a plain dict inside every checkpoint."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..plain_config import PlainConfig

KIND = "harmonise"


@dataclass
class HarmoniseConfig(PlainConfig):
    """Shapes of the network, the bounds of the colour transform it predicts, the ΔE budget and what its
    trainer draws.

    The network sees the composite (product on its backdrop) and the alpha squeezed to a ``size`` square
    (``width`` channels in its first convolution, ``hidden`` units in its head) and predicts one global colour
    transform of the product (``transform``). Each part of the transform is bounded (tanh-scaled): per-channel
    linear-light log gains by ``max_log_gain``, the off-diagonal entries of the colour matrix by ``max_mix``,
    log gamma by ``max_log_gamma``, log contrast by ``max_log_contrast`` and the per-channel offsets by
    ``max_bias``. The bounds are wider than the inverse of the strongest training perturbation (``perturb``)
    so the network can undo any of them without pushing a tanh into saturation.

    ``max_delta_e`` is the stated ΔE budget (CIE76, ``transform.delta_e``): at inference no product pixel may
    change by more than this; a stronger predicted change is blended toward the identity until it fits.

    Training (``objective``): ``identity_p`` of the samples are not perturbed (an already matching product
    must stay as it is), ``perturb_scale`` scales the perturbation ranges, ``loss`` is "l2" (squared error,
    the default, see ``objective``) or "l1", ``lab_weight`` adds the mean CIE76 error / 100 to it (mind the
    scale: a squared sRGB error is ~0.003 where a mean ΔE / 100 is ~0.05). Augmentations: ``scene_scale``
    scales the random perturbation of the whole photo (0: none), ``crop`` is the smallest random crop, as a
    share of the side (1: none). ``pairing`` (see ``objective``): "product" perturbs the product of a (relit)
    photo, as the issue's benchmark does; "both" lights product and backdrop independently (each kept as shot
    with probability ``as_shot_p``) and asks for the product under the backdrop's light.

    Defaults measured on the clothing photos (400 train photos, 100 test photos, ``evaluation``): 64 px gives
    the network what 96 px gives (colour statistics need no detail) at half the cost per step, so twice the
    steps in a time budget; ~54k parameters.
    """

    size: int = 64
    width: int = 16
    hidden: int = 64
    max_log_gain: float = 0.8
    max_mix: float = 0.4
    max_log_gamma: float = 0.4
    max_log_contrast: float = 0.4
    max_bias: float = 0.08
    max_delta_e: float = 8.0
    identity_p: float = 0.2
    perturb_scale: float = 1.0
    loss: str = "l2"
    lab_weight: float = 0.0
    scene_scale: float = 1.0
    crop: float = 0.6
    pairing: str = "product"
    as_shot_p: float = 0.5
    kind: str = KIND

    def __post_init__(self) -> None:
        for key in ("size", "width", "hidden"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        # Four stride-2 convolutions must leave at least one pixel.
        if self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        for key in ("max_log_gain", "max_mix", "max_log_gamma", "max_log_contrast", "max_bias", "max_delta_e"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number > 0, got {value!r}")
            setattr(self, key, float(value))
        for key in ("identity_p", "perturb_scale", "lab_weight", "scene_scale", "crop", "as_shot_p"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or not math.isfinite(value):
                raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
            setattr(self, key, float(value))
        if self.identity_p > 1:
            raise ValueError(f"identity_p must be in [0, 1], got {self.identity_p}")
        if self.as_shot_p > 1:
            raise ValueError(f"as_shot_p must be in [0, 1], got {self.as_shot_p}")
        if self.pairing not in ("product", "both"):
            raise ValueError(f"pairing must be 'product' or 'both', got {self.pairing!r}")
        if not 0 < self.crop <= 1:
            raise ValueError(f"crop must be in (0, 1], got {self.crop}")
        if self.loss not in ("l1", "l2"):
            raise ValueError(f"loss must be 'l1' or 'l2', got {self.loss!r}")
        if self.kind != KIND:
            raise ValueError(f"HarmoniseConfig.kind must be {KIND!r}, got {self.kind!r}")
