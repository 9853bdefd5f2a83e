"""Repair photos with a trained inpainting checkpoint: the network runs on a crop around the marked region
only, and every pixel outside the mask is copied from the input."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..photos import has_alpha
from ..restoration.tiling import pad_to_multiple
from ..sampling import FrozenNetwork
from .config import KIND, InpaintConfig
from .networks import InpaintNet

# Context around the mask's bounding box: half its longer side (a hole is filled from what surrounds it, and
# the network was trained on crops where holes cover at most 30 %), at least MIN_MARGIN pixels.
MIN_MARGIN = 32
# The working crop is shrunk to this long side when bigger: the fill of a huge hole is smooth anyway, and a
# 24-megapixel photo with a hole across it must not cost seconds per megapixel. Small holes never hit it.
MAX_WORK_SIDE = 768
# A mask pixel is a hole from this value up ("L" mode, 255 = repair): antialiased brush edges count.
MASK_THRESHOLD = 128


def crop_box(hole: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the mask's bounding box grown by the context margin, inside the image."""
    rows, cols = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
    top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    margin = max(MIN_MARGIN, math.ceil(max(bottom - top, right - left) / 2))
    height, width = hole.shape
    return max(left - margin, 0), max(top - margin, 0), min(right + margin, width), min(bottom + margin, height)


class Inpainter(FrozenNetwork):
    """The EMA network of a checkpoint, frozen for inference."""

    KIND = KIND
    CONFIG = InpaintConfig
    NETWORK = InpaintNet

    @torch.inference_mode()
    def fill(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network's output for float N x 3 x H x W in [0, 1] and masks N x 1 x H x W (1 = hole), any H, W:
        padded (mirrored) to the alignment and cropped back, clipped to [0, 1], on the CPU. Not composited."""
        both, (h, w) = pad_to_multiple(torch.cat([image, mask], dim=1).to(self.device, torch.float32),
                                       self.config.alignment)
        out = self.model(both[:, :3], both[:, 3:])
        return out[..., :h, :w].clamp_(0.0, 1.0).cpu()

    def repair(self, image: Image.Image, mask: Image.Image) -> Image.Image:
        """The photo with the region marked in ``mask`` filled in.

        ``mask`` is the photo's size, white (>= 128 in "L") where to repair. Every pixel outside the mask comes
        back exactly as it was (RGB; an image with transparency comes back RGBA with its alpha channel
        unchanged, holes included, since repair is about colour). An empty mask returns the photo unchanged.
        """
        if not isinstance(mask, Image.Image) or not isinstance(image, Image.Image):
            raise ValueError("image and mask must be PIL images")
        if mask.size != image.size:
            raise ValueError(f"mask is {mask.size[0]} x {mask.size[1]}, the photo {image.size[0]} x {image.size[1]}:"
                             " they must be the same size")
        alpha = image.convert("RGBA").getchannel("A") if has_alpha(image) else None
        rgb = np.array(image.convert("RGB"))
        hole = np.asarray(mask.convert("L")) >= MASK_THRESHOLD
        if hole.any():
            left, top, right, bottom = crop_box(hole)
            region, region_hole = rgb[top:bottom, left:right], hole[top:bottom, left:right]
            filled = self._fill_region(region, region_hole)
            # The composite: only hole pixels are written, so the rest of the photo is the input, bit for bit.
            region[region_hole] = filled[region_hole]
        out = Image.fromarray(rgb, "RGB")
        if alpha is not None:
            out.putalpha(alpha)
        return out

    def _fill_region(self, region: np.ndarray, hole: np.ndarray) -> np.ndarray:
        """uint8 H x W x 3 of the network's fill for one crop (shrunk to ``MAX_WORK_SIDE`` and enlarged back
        when bigger)."""
        height, width = hole.shape
        x = torch.from_numpy(region).permute(2, 0, 1).float().div_(255.0).unsqueeze(0)
        m = torch.from_numpy(hole).float()[None, None]
        scale = MAX_WORK_SIDE / max(height, width)
        if scale < 1:
            size = (max(1, round(height * scale)), max(1, round(width * scale)))
            x = F.interpolate(x, size=size, mode="area")
            # Any hole pixel under a small pixel makes it a hole: no damaged colour leaks into the input.
            m = (F.interpolate(m, size=size, mode="area") > 0).float()
        out = self.fill(x, m)
        if scale < 1:
            out = F.interpolate(out, size=(height, width), mode="bicubic", align_corners=False).clamp_(0.0, 1.0)
        return out[0].mul(255.0).round_().to(torch.uint8).permute(1, 2, 0).numpy()
