"""Encoder and decoder of the VAE. Pure nn.Modules: no I/O, no losses, no randomness.

DCGAN-shaped like the GAN (4x4 stride-2 (transposed) convolutions, widths
doubling toward 4x4, capped at 8x the base width) since that layout was the
cheapest measured on a 2-core CPU. No BatchNorm: outputs then do not depend on
the batch, so the EMA copy needs no recalibration and one image decodes the
same alone or in a batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import VAEConfig

CLASS_EMBED_DIM = 64
MAX_WIDTH_MULT = 8


def _num_resamplings(image_size: int) -> int:
    """How many 2x (up/down)samplings lie between a 4x4 map and the image."""
    return int(math.log2(image_size)) - 2


class Encoder(nn.Module):
    """Image in [-1, 1] (and class id for "cvae") -> (mu, logvar) of q(z|x[, y]), each N x latent_dim."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        steps = _num_resamplings(config.image_size)
        widths = [3] + [config.enc_width * min(MAX_WIDTH_MULT, 2**i) for i in range(steps)]
        self.downs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 4, stride=2, padding=1) for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        extra = CLASS_EMBED_DIM if config.conditional else 0
        self.class_embed = nn.Embedding(config.num_classes, CLASS_EMBED_DIM) if config.conditional else None
        self.head = nn.Linear(16 * widths[-1] + extra, 2 * config.latent_dim)

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h = images
        for down in self.downs:
            h = F.leaky_relu(down(h), 0.2)
        h = h.flatten(1)
        if self.class_embed is not None:
            if labels is None:
                raise ValueError("a cvae encoder needs class labels")
            h = torch.cat([h, self.class_embed(labels)], dim=1)
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar


class Decoder(nn.Module):
    """Latent z (and class id for "cvae") -> mean image in [-1, 1] (tanh), N x 3 x S x S."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        steps = _num_resamplings(config.image_size)
        widths = [config.dec_width * min(MAX_WIDTH_MULT, 2 ** (steps - 1 - i)) for i in range(steps)]
        self.stem_width = widths[0]
        extra = CLASS_EMBED_DIM if config.conditional else 0
        self.class_embed = nn.Embedding(config.num_classes, CLASS_EMBED_DIM) if config.conditional else None
        self.stem = nn.Linear(config.latent_dim + extra, 16 * widths[0])
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1) for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        self.to_rgb = nn.ConvTranspose2d(widths[-1], 3, 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.class_embed is not None:
            if labels is None:
                raise ValueError("a cvae decoder needs class labels")
            z = torch.cat([z, self.class_embed(labels)], dim=1)
        h = F.leaky_relu(self.stem(z), 0.2).view(-1, self.stem_width, 4, 4)
        for up in self.ups:
            h = F.leaky_relu(up(h), 0.2)
        return torch.tanh(self.to_rgb(h))


class VAE(nn.Module):
    """Encoder and decoder in one module, so one EMA copy and one state_dict cover both."""

    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)
