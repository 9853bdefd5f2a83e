"""Enhance photos with a trained restoration checkpoint: tone correction, then the local network in tiles."""

from __future__ import annotations

import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor, to_pil_image

from ..photos import has_alpha
from ..sampling import FrozenNetwork
from .config import KIND, RestorationConfig
from .degrade import SCALES, to_float, to_uint8, upscale_bicubic
from .networks import RestorationModel, apply_tone, halo, preview
from .tiling import apply_tiled, pad_to_multiple

DEFAULT_TILE = 512
# Bound on the output size: the enlarged photo is held as floats (12 bytes per pixel) before the network.
MAX_OUTPUT_PIXELS = 64_000_000


class Restorer(FrozenNetwork):
    """The EMA networks of a checkpoint, frozen for inference."""

    KIND = KIND
    CONFIG = RestorationConfig
    NETWORK = RestorationModel

    @property
    def halo(self) -> int:
        """The smallest tile overlap that gives exactly the untiled result (a multiple of the alignment)."""
        return halo(self.config)

    @torch.inference_mode()
    def restore_tensor(
        self, image: torch.Tensor, *, upscale: int = 1, tile: int = DEFAULT_TILE, overlap: int | None = None,
    ) -> torch.Tensor:
        """Restore N x 3 x H x W floats in [0, 1]: N x 3 x (upscale H) x (upscale W) in [0, 1] on the CPU.

        Upscaling is bicubic enlargement followed by the network (trained on photos that were downscaled and
        enlarged back). The tone curve is estimated from the whole (enlarged) photo, then the local network
        runs in tiles of ``tile`` pixels that overlap by ``overlap`` (default and minimum for the exact
        untiled result: ``halo``; a smaller overlap is faster and leaves faint seams). ``tile`` and
        ``overlap`` must be multiples of ``config.alignment``.
        """
        if upscale not in SCALES:
            raise ValueError(f"upscale must be one of {SCALES}, got {upscale!r}")
        if image.dim() != 4 or image.shape[1] != 3 or not image.is_floating_point():
            raise ValueError(f"expected float N x 3 x H x W, got {image.dtype} {tuple(image.shape)}")
        overlap = self.halo if overlap is None else int(overlap)
        x = upscale_bicubic(image.to(self.device, torch.float32), upscale)
        both = torch.cat([apply_tone(x, self.model.tone(preview(x))), x], dim=1)
        padded, (h, w) = pad_to_multiple(both, self.config.alignment)
        out = apply_tiled(
            lambda t: self.model.local(t[:, :3], t[:, 3:]), padded,
            tile=int(tile), overlap=overlap, align=self.config.alignment,
        )
        return out[..., :h, :w].clamp_(0.0, 1.0).cpu()

    def enhance(
        self, image: Image.Image, *, upscale: int = 1, tile: int = DEFAULT_TILE, overlap: int | None = None,
    ) -> Image.Image:
        """The restored photo (denoised, sharpened, JPEG artefacts removed, exposure and white balance
        corrected), ``upscale`` (1, 2 or 4) times larger. RGB in, RGB out; an image with transparency comes
        back RGBA with its alpha channel carried over (resized bicubically when upscaling).
        """
        if upscale not in SCALES:
            raise ValueError(f"upscale must be one of {SCALES}, got {upscale!r}")
        width, height = image.size
        if width * height * upscale * upscale > MAX_OUTPUT_PIXELS:
            raise ValueError(
                f"{width} x {height} enlarged {upscale}x is over {MAX_OUTPUT_PIXELS // 1_000_000} megapixels"
            )
        alpha = image.convert("RGBA").getchannel("A") if has_alpha(image) else None
        pixels = to_float(pil_to_tensor(image.convert("RGB"))).unsqueeze(0)
        restored = to_pil_image(to_uint8(self.restore_tensor(pixels, upscale=upscale, tile=tile, overlap=overlap)[0]))
        if alpha is None:
            return restored
        if upscale > 1:
            alpha = alpha.resize(restored.size, Image.Resampling.BICUBIC)
        restored.putalpha(alpha)
        return restored
