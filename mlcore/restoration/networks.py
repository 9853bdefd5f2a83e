"""The restoration networks. Pure nn.Modules: no I/O, no losses, no randomness.

Two stages, because the degradations are of two sorts:

* **Tone** (exposure, white balance) is one curve for the whole photo. A network that sees only a
  neighbourhood cannot tell a grey shirt from an under-exposed white backdrop, so ``ToneNet`` looks at the
  whole photo once, as a 64 x 64 preview, and predicts the curve y_c = g_c * x_c ** gamma (per-channel
  gain, one gamma) that undoes the error. Applied per pixel, it costs nothing and does not care about tiles.
* **Everything local** (noise, blur, JPEG blocks, the softness of an enlarged photo) is undone by
  ``LocalNet``, a fully convolutional residual UNet with no global operation at all (no attention, pooling
  or normalisation statistics), so each output pixel depends only on input pixels within ``halo`` of it and
  a photo of any size can be processed in overlapping tiles with exactly the untiled result.

``LocalNet`` layout, trimmed for a 2-core CPU: the tone-corrected image and the original enter as 2 x 2
pixel patches (pixel unshuffle, 24 channels at half resolution) so no layer runs at full resolution; ``levels`` resolutions (width doubling at
each) joined by 2 x 2 stride-2 convs down and 1 x 1 conv + pixel shuffle up, with additive skips;
``blocks`` residual blocks (3 x 3 conv, ReLU, 3 x 3 conv) per level on each side; the output is the input
plus a predicted correction whose last conv starts at zero, so the untrained network is the identity.

Receptive field (``receptive_field``): with the defaults (width 32, 3 levels, 1 block) an output pixel
depends on the input pixels up to 51 away from it in each direction (a 103 x 103 window), so tiles need an
overlap of 56 (51 rounded up to the alignment of 8) to reproduce the untiled result exactly. Default size:
0.61M parameters with ToneNet, about 55 GFLOP per megapixel: 0.42 s per megapixel on 2 CPU cores, tiled
(bench/results/2026-11-22-enhance.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..patch_unet import PATCH, PatchUNet, ResBlock
from .config import RestorationConfig

# ToneNet's input: the whole photo resized (area average) to this square; global levels need no more.
PREVIEW_SIZE = 64
# Per-channel quantiles of the preview that ToneNet reads besides its conv features.
QUANTILES = (0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
# Tone curve parameters: log gain of R, G, B and log gamma.
TONE_PARAMS = 4
# Keeps x ** gamma differentiable at black (its derivative is infinite at 0 for gamma < 1).
TONE_EPS = 1e-4


def _stage(width: int, blocks: int) -> nn.Sequential:
    return nn.Sequential(*(ResBlock(width) for _ in range(blocks)))


class LocalNet(PatchUNet):
    """(tone-corrected image, the image as it came) N x 3 x H x W each -> the restored image (not clipped).

    The correction is added to the tone-corrected image. The original is an input too because the tone
    curve hides what it undid: a highlight clipped at white comes out of the curve as a flat grey that
    looks like a grey garment, while the original still shows it was saturated. H and W must be multiples
    of ``config.alignment``."""

    def __init__(self, config: RestorationConfig) -> None:
        blocks = config.blocks
        super().__init__(
            2 * 3, [config.width * 2**i for i in range(config.levels)], stage=lambda w: _stage(w, blocks),
            middle=lambda w: _stage(w, blocks), alignment=config.alignment,
        )
        self.config = config

    def forward(self, x: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return x + self.correction(torch.cat([x, original], dim=1))


def receptive_field(config: RestorationConfig) -> tuple[int, int]:
    """(left, right): output pixel x depends on input pixels x - left ... x + right at most (same vertically).

    Traced through the layers of ``LocalNet`` with dependency intervals [p * jump + a, p * jump + b] of a
    feature at index p whose pixels are ``jump`` input pixels apart; an upsampling step takes the union
    over the fine pixels sharing a coarse one. ``tests/test_restoration.py`` checks it against the network.
    """
    a, b = 0, PATCH - 1  # pixel unshuffle: feature p covers input pixels 2p, 2p + 1
    jump = PATCH
    a, b = a - jump, b + jump  # head conv 3 x 3
    skips = []
    for _ in range(config.levels - 1):
        a, b = a - 2 * config.blocks * jump, b + 2 * config.blocks * jump
        skips.append((a, b))
        b += jump  # 2 x 2 stride-2 conv: feature q covers features 2q and 2q + 1
        jump *= 2
    a, b = a - 2 * config.blocks * jump, b + 2 * config.blocks * jump
    for skip_a, skip_b in reversed(skips):
        jump //= 2
        a -= jump  # pixel shuffle: fine p = 2q + 1 sits one fine pixel after 2q, both read coarse q
        a, b = min(a, skip_a), max(b, skip_b)
        a, b = a - 2 * config.blocks * jump, b + 2 * config.blocks * jump
    a, b = a - jump, b + jump  # tail conv 3 x 3
    a -= 1  # pixel shuffle to full resolution
    return -min(a, 0), max(b, 0)


def halo(config: RestorationConfig) -> int:
    """The tile overlap that reproduces the untiled result: the receptive radius rounded up to the alignment."""
    left, right = receptive_field(config)
    align = config.alignment
    return math.ceil(max(left, right) / align) * align


def preview(image: torch.Tensor) -> torch.Tensor:
    """N x 3 x H x W -> N x 3 x 64 x 64, each preview pixel the mean of its patch of the photo."""
    return F.interpolate(image, size=(PREVIEW_SIZE, PREVIEW_SIZE), mode="area")


def apply_tone(image: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """y_c = exp(params_c) * x_c ** exp(params_3) per pixel; ``params`` N x 4 as ``ToneNet`` predicts them.

    Not clipped: values above 1 carry what the local network may still want (a clipped highlight's shape)."""
    log_gains, log_gamma = params[:, :3, None, None], params[:, 3:, None, None]
    return torch.exp(log_gains) * image.clamp_min(TONE_EPS).pow(torch.exp(log_gamma))


class ToneNet(nn.Module):
    """Previews N x 3 x 64 x 64 in [0, 1] -> N x 4 tone-curve parameters (``apply_tone``).

    Three stride-2 convs down to 8 x 8, pooled by mean and maximum (the maximum finds the brightest surface,
    a white backdrop when there is one), and the preview's per-channel quantiles (``QUANTILES``), which give
    the white and black points and the midtones directly instead of waiting for the convs to learn them. An
    MLP maps these to the curve; its last layer starts at zero, so the untrained network is the identity."""

    def __init__(self, config: RestorationConfig) -> None:
        super().__init__()
        w = config.tone_width
        widths = [3, w, 2 * w, 4 * w]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1) for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        self.register_buffer("quantiles", torch.tensor(QUANTILES), persistent=False)
        self.hidden = nn.Linear(2 * widths[-1] + 3 * len(QUANTILES), 4 * w)
        self.out = nn.Linear(4 * w, TONE_PARAMS)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, previews: torch.Tensor) -> torch.Tensor:
        h = previews
        for conv in self.convs:
            h = F.relu(conv(h))
        levels = torch.quantile(previews.flatten(2), self.quantiles, dim=2)  # Q x N x 3
        features = [h.mean(dim=(2, 3)), h.amax(dim=(2, 3)), levels.permute(1, 0, 2).flatten(1)]
        return self.out(F.relu(self.hidden(torch.cat(features, dim=1))))


class RestorationModel(nn.Module):
    """Both stages in one module, so one EMA copy and one state_dict cover them."""

    def __init__(self, config: RestorationConfig) -> None:
        super().__init__()
        self.config = config
        self.tone = ToneNet(config)
        self.local = LocalNet(config)

    def forward(self, images: torch.Tensor, previews: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(restored images, tone parameters of every preview) for network inputs N x 3 x H x W and previews
        M x 3 x 64 x 64 (M >= N), the first N of the images' own photos.

        The curve reaches the local network detached: the tone network learns only from its own loss on the
        previews (``objective``). Through the local network its gradient also carries what the local network
        has not learned yet, which made the curve drift on correctly exposed photos in small runs."""
        params = self.tone(previews)
        return self.local(apply_tone(images, params[: len(images)].detach()), images), params
