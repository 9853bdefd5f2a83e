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

CLASS_EMBED_DIM = 128
# Features are capped at 8x the base width, as in DCGAN; more only costs time.
MAX_WIDTH_MULT = 8


def _num_resamplings(image_size: int) -> int:
    """How many 2x (up/down)samplings lie between a 4x4 map and the image."""
    return int(math.log2(image_size)) - 2


class ClassConditionalNorm(nn.Module):
    """Conditional BatchNorm (BigGAN): BatchNorm without its own affine, then a
    scale and shift computed from the shared class embedding.

    Scale and shift come through a linear layer from a shared embedding rather
    than from a per-class table: a zero-initialised table moves by only ~lr per
    Adam step, and classes were measured to still look alike after 500 steps.
    Batch statistics mean the EMA copy needs its own running statistics before
    it samples, see ``ema.recalibrate_batchnorm``.
    """

    def __init__(self, channels: int, embed_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(embed_dim, channels)
        self.bias = nn.Linear(embed_dim, channels)
        for layer in (self.gain, self.bias):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, class_embedding: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(class_embedding)[:, :, None, None]
        bias = self.bias(class_embedding)[:, :, None, None]
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
        # z alone sets the 4x4 layout. A bias here (or the class embedding mixed
        # in) gives a per-position template that does not depend on z, and the
        # generator was measured to fall back on it: one image per class.
        self.stem = nn.Linear(config.z_dim, 16 * widths[0], bias=False)
        self.stem_norm = ClassConditionalNorm(widths[0], CLASS_EMBED_DIM)
        self.ups = nn.ModuleList()
        self.norms = nn.ModuleList()
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            # No bias: the BatchNorm right after would subtract it again.
            self.ups.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False))
            self.norms.append(ClassConditionalNorm(c_out, CLASS_EMBED_DIM))
        self.to_rgb = nn.ConvTranspose2d(widths[-1], 3, 4, stride=2, padding=1)

    def embed(self, labels: torch.Tensor) -> torch.Tensor:
        """The condition vector the normalisation layers read (N x CLASS_EMBED_DIM)."""
        return self.class_embed(labels)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        embedding = self.embed(labels)
        h = self.stem(z).view(-1, self.stem_width, 4, 4)
        h = F.relu(self.stem_norm(h, embedding))
        for up, norm in zip(self.ups, self.norms):
            h = F.relu(norm(up(h), embedding))
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

    def projection(self, labels: torch.Tensor) -> torch.Tensor:
        """The vector the pooled features are projected on for the condition (N x C)."""
        return self.class_embed(labels)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.features(images)
        return self.linear(h).squeeze(1) + (self.projection(labels) * h).sum(dim=1)

    def all_class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of every image against every class, N x num_classes."""
        h = self.features(images)
        return self.linear(h) + h @ self.class_embed.weight.t()


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (for logs and reports)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
