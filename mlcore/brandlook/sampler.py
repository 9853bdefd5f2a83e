"""``BrandLook``: a trained brand-look checkpoint, frozen for inference (the sampler layer).

    brand = BrandLook.from_checkpoint("brandlook.pt")
    look = brand.look_of([ref1, ref2, ref3])          # plain data: store it as JSON
    result = brand.apply(photo, look)                 # same size and mode family, alpha kept

The table weights come from a small copy of the photo (``thumb_size`` square, the photo's own look from its
``look.STATS_SIDE`` copy); the resulting 3D LUT is then applied to every pixel of the full-resolution photo.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from ..background.images import prepare
from ..sampling import FrozenNetwork
from .config import KIND, BrandLookConfig
from .distance import image_distance
from .images import map_colours, rgb_tensor
from .look import Look, check_look, look_of, look_tensors, reference_noise, statistics_of, vector
from .lut import apply_lut_large
from .networks import AdaptiveLUT


class BrandLook(FrozenNetwork):
    """The EMA network of a "brandlook" checkpoint."""

    KIND = KIND
    CONFIG = BrandLookConfig
    NETWORK = AdaptiveLUT

    @staticmethod
    def look_of(images: Sequence[Image.Image]) -> Look:
        """The look of reference photos (``look.look_of``): a JSON-ready dict, independent of the checkpoint."""
        return look_of(images)

    @staticmethod
    def distance(image: Image.Image, look: Look) -> float:
        """The colour-statistics distance of ``image`` to ``look`` (``distance.image_distance``)."""
        return image_distance(image, look)

    def _thumbnail(self, image: Image.Image) -> torch.Tensor:
        """1 x 3 x T x T: box-resampled like the trainer's average pooling; transparency over white."""
        rgb, alpha = prepare(image)
        if alpha is not None:
            white = Image.new("RGB", rgb.size, (255, 255, 255))
            white.paste(rgb, mask=alpha)
            rgb = white
        side = self.config.train_size
        small = rgb_tensor(rgb.resize((side, side), Image.Resampling.BOX))[None]
        return F.avg_pool2d(small, side // self.config.thumb_size)

    @torch.inference_mode()
    def lut_for(self, image: Image.Image, look: Look) -> torch.Tensor:
        """The 3 x M x M x M table that maps ``image`` to ``look`` (on the CPU)."""
        look = check_look(look)
        own = vector({k: v[None] for k, v in statistics_of(image).items()})
        target = vector({k: v[None] for k, v in look_tensors(look).items()})
        noise = torch.tensor([reference_noise(look["images"])])
        thumb = self._thumbnail(image)
        lut = self.model(thumb.to(self.device), own.to(self.device), target.to(self.device), noise.to(self.device))
        return lut[0].float().cpu()

    def apply(self, image: Image.Image, look: Look) -> Image.Image:
        """``image`` mapped to ``look``, any size: "RGB", or "RGBA" with the original alpha when it had one.

        ``ValueError`` for a malformed look or an image mode that has no RGB meaning."""
        lut = self.lut_for(image, look)
        return map_colours(image, lambda rgb: apply_lut_large(rgb, lut))
