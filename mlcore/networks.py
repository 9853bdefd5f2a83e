"""The two networks of the class-conditional GAN. Pure nn.Modules: no I/O, no losses.

Both are DCGAN-shaped (4x4 stride-2 (transposed) convolutions) because on a
2-core CPU that was the cheapest layout measured: nearest-upsample + 3x3 convs
at the same widths cost ~50% more per step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .config import GANConfig

CLASS_EMBED_DIM = 64
# Features are capped at 8x the base width, as in DCGAN; more only costs time.
MAX_WIDTH_MULT = 8


def _num_resamplings(image_size: int) -> int:
    """How many 2x (up/down)samplings lie between a 4x4 map and the image."""
    return int(math.log2(image_size)) - 2


class ClassConditionalNorm(nn.Module):
    """BatchNorm without its own affine, then a per-class scale and shift (conditional BN).

    BatchNorm rather than a per-sample norm: with per-pixel normalisation the
    generator was measured to ignore z and draw one image per class; batch
    statistics couple the samples and keep them apart (as DCGAN reports). Its
    running statistics matter for the EMA copy, see ``ema.recalibrate_batchnorm``.
    """

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        # Start as a plain normalisation; classes learn their own modulation.
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(labels)[:, :, None, None]
        bias = self.bias(labels)[:, :, None, None]
        return self.norm(x) * gain + bias


class Generator(nn.Module):
    """Noise z and a class id -> image in [-1, 1] of shape N x 3 x S x S."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        steps = _num_resamplings(config.image_size)
        # Widths per resolution 4, 8, ..., S/2: widest at 4x4, halving upward.
        widths = [config.g_width * min(MAX_WIDTH_MULT, 2 ** (steps - 1 - i)) for i in range(steps)]
        self.stem_width = widths[0]
        self.class_embed = nn.Embedding(config.num_classes, CLASS_EMBED_DIM)
        self.stem = nn.Linear(config.z_dim + CLASS_EMBED_DIM, 16 * widths[0])
        self.stem_norm = ClassConditionalNorm(widths[0], config.num_classes)
        self.ups = nn.ModuleList()
        self.norms = nn.ModuleList()
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            self.ups.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            self.norms.append(ClassConditionalNorm(c_out, config.num_classes))
        self.to_rgb = nn.ConvTranspose2d(widths[-1], 3, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.stem(torch.cat([z, self.class_embed(labels)], dim=1))
        h = F.relu(self.stem_norm(h.view(-1, self.stem_width, 4, 4), labels))
        for up, norm in zip(self.ups, self.norms):
            h = F.relu(norm(up(h), labels))
        return torch.tanh(self.to_rgb(h))


class Discriminator(nn.Module):
    """Image and class id -> raw realness logit, shape (N,).

    Spectral norm on every layer (Miyato et al. 2018) and a projection head for
    the class (Miyato & Koyama 2018): logit = psi(h) + <embed(y), h>.
    """

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        steps = _num_resamplings(config.image_size)
        widths = [3] + [config.d_width * min(MAX_WIDTH_MULT, 2**i) for i in range(steps)]
        self.downs = nn.ModuleList(
            spectral_norm(nn.Conv2d(c_in, c_out, 4, stride=2, padding=1))
            for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        self.linear = spectral_norm(nn.Linear(widths[-1], 1))
        self.class_embed = spectral_norm(nn.Embedding(config.num_classes, widths[-1]))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features h (N x C) shared by the unconditional and class terms."""
        h = images
        for down in self.downs:
            h = F.leaky_relu(down(h), 0.2)
        # Sum, not mean, pooling as in SNGAN: it keeps the logit scale with size.
        return h.sum(dim=(2, 3))

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(images)
        return self.linear(h).squeeze(1) + (self.class_embed(labels) * h).sum(dim=1)

    def all_class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of every image against every class, N x num_classes."""
        h = self.features(images)
        return self.linear(h) + h @ self.class_embed.weight.t()
