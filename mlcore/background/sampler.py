"""Cut the product out of a photo: the public entry point the Django side calls.

    segmenter = Segmenter.from_checkpoint(path_or_bytes, device="cpu")   # network + border model
    segmenter = Segmenter.classical()                                    # border model only, no weights
    mask = segmenter.mask(image)       # PIL "L", same size as the upright image, 255 = product

Methods (``method``):
- "classical": ``classical.border_matte`` alone. Exact on plain backdrops, wrong on textured ones.
- "network": the segmentation network (on the photo and its mirror image), its mask brought to full
  resolution with the guided filter, made opaque where it is sure and cleaned like the border model's.
- "combined" (the default with a checkpoint): the border model where it is confident about the
  photo (its verdict, see ``classical``), the network everywhere else. On plain backdrops the
  border model works at full resolution and follows every thread; the network carries the rest.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image

from ..checkpoint import CheckpointSource
from ..devices import resolve_device
from ..sampling import load_ema_network
from . import morphology
from .classical import COMPONENT_MIN_SHARE, COMPONENT_RELATIVE, HOLE_MAX_SHARE, border_matte
from .config import KIND, SegmenterConfig
from .images import mask_to_image, prepare, to_tensor
from .networks import SegmentationNet
from .refine import fast_guided_filter, luminance

METHODS = ("classical", "network", "combined")
# The network segments photos squeezed to this multiple of its training size, and averages its logits
# with those of the mirrored photo. Chosen on composites of the VALIDATION split (64, seed 2000; the
# benchmark's test split played no part), network of 8 minutes, mean IoU with the guided filter:
# 128 px 0.933, 160 px 0.941, 192 px 0.942; with the mirror 0.938 / 0.944 / 0.946. Products fill
# 40-90% of the training canvas, so somewhat larger than trained still matches what the network
# learnt. Costs ~30 ms a photo on 2 cores.
INFERENCE_SCALE = 1.5
# Guided filter: the window covers about one network pixel scaled to the photo, and edges need a
# brightness variance of about 0.01 (a step of ~0.2 in [0, 1] brightness) to be followed.
REFINE_EPS = 1e-2
MIN_REFINE_RADIUS = 2
# Alpha = (probability - 0.5) x ALPHA_RAMP + 0.5, clamped: opaque from p = 0.625, clear below 0.375.
ALPHA_RAMP = 4.0


class Segmenter:
    """Masks of products in photos; see the module docstring for the methods."""

    def __init__(
        self,
        *,
        method: str,
        model: SegmentationNet | None = None,
        device: str | torch.device = "cpu",
        package_version: str | None = None,
        step: int = 0,
        refine: bool = True,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        if method != "classical" and model is None:
            raise ValueError(f"method {method!r} needs a trained network (Segmenter.from_checkpoint)")
        self.method = method
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False) if model is not None else None
        self.config: SegmenterConfig | None = model.config if model is not None else None
        self.package_version = package_version
        self.step = step
        self.refine = refine

    @classmethod
    def classical(cls) -> Segmenter:
        """The border colour model alone: needs no checkpoint, good on plain backdrops only."""
        return cls(method="classical")

    @classmethod
    def from_checkpoint(
        cls, source: CheckpointSource, device: str | torch.device = "cpu", *, method: str = "combined"
    ) -> Segmenter:
        """Load a trainer checkpoint (path, bytes or binary file object; ``weights_only`` loading) and
        use its EMA network. ``ValueError`` when it is not a "background" checkpoint."""
        ckpt, _config, model = load_ema_network(source, (KIND,), SegmenterConfig.from_dict, SegmentationNet)
        return cls(
            method=method, model=model, device=device,
            package_version=str(ckpt["package_version"]), step=int(ckpt.get("step", 0)),
        )

    def mask(self, image: Image.Image, *, use_alpha: bool = True) -> Image.Image:
        """The product's mask as a mode "L" image the size of the upright ``image`` (EXIF applied).

        An image that already has transparency (RGBA, LA, PA, a palette with a transparent colour,
        and not fully opaque) is taken as already cut out: its alpha is returned as it is unless
        ``use_alpha`` is False. ``ValueError`` for images ``images.prepare`` cannot read."""
        rgb, alpha = prepare(image)
        if use_alpha and alpha is not None:
            return alpha
        return mask_to_image(self.alpha(rgb))

    def alpha(self, rgb: Image.Image) -> torch.Tensor:
        """Soft mask (float H x W in [0, 1]) of an upright RGB image, by this segmenter's method."""
        if self.method in ("classical", "combined"):
            matte = border_matte(rgb)
            if self.method == "classical" or matte.confident:
                return matte.alpha
        return self.network_alpha(to_tensor(rgb))

    @torch.inference_mode()
    def network_alpha(self, rgb: torch.Tensor) -> torch.Tensor:
        """The network's soft mask of uint8 3 x H x W at full resolution (guided-filtered if ``refine``)."""
        if self.model is None or self.config is None:
            raise ValueError("this segmenter has no network")
        _, height, width = rgb.shape
        stride = self.config.stride
        side = max(stride, round(self.config.image_size * INFERENCE_SCALE / stride) * stride)
        x = F.interpolate(rgb[None].float(), size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        x = (x / 127.5 - 1.0).to(self.device)
        logits = ((self.model(x) + self.model(x.flip(-1)).flip(-1)) / 2).float().cpu()
        # Logits, not probabilities, are interpolated: the edge stays where the logit crosses 0.
        full = F.interpolate(logits, size=(height, width), mode="bilinear", align_corners=False)
        probability = torch.sigmoid(full)[0, 0]
        if not self.refine:
            return probability
        radius = max(MIN_REFINE_RADIUS, round(max(height, width) / side))
        # Coefficients fitted at about twice the network's resolution: finer adds cost, not accuracy.
        subsample = max(1, max(height, width) // (2 * side))
        refined = fast_guided_filter(luminance(rgb), probability, radius, REFINE_EPS, subsample)
        # A probability is not an alpha: a garment the network is 70% sure of must be opaque, not 70%
        # see-through. The ramp keeps a soft transition only where the probability crosses 0.5.
        alpha = ((refined - 0.5) * ALPHA_RAMP + 0.5).clamp(0.0, 1.0)
        # The same cleanup as the border model's, at the network's resolution: stray blobs go, small
        # holes close; away from the cleaned outline by more than one network pixel the alpha is 0 or 1.
        # On the 127 validation composites: mean IoU 0.907 -> 0.909, IoU >= 0.9 for 72% -> 76%.
        small = torch.sigmoid(logits)[0, 0] > 0.5
        cleaned, _ = morphology.keep_large_components(
            small, relative=COMPONENT_RELATIVE, absolute=max(1, round(COMPONENT_MIN_SHARE * small.numel()))
        )
        cleaned = morphology.fill_holes(cleaned, max_area=round(HOLE_MAX_SHARE * int(cleaned.sum())))
        inside = morphology.resize_nearest(morphology.erode(cleaned, 1), height, width)
        outside = morphology.resize_nearest(~morphology.dilate(cleaned, 1), height, width)
        return torch.where(inside, 1.0, torch.where(outside, 0.0, alpha))
