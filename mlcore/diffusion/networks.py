"""The noise-prediction UNet of the "ddpm" kind. Pure nn.Modules: no I/O, no losses, no randomness.

A small improved-DDPM-style UNet (Nichol & Dhariwal 2021), trimmed for a 2-core CPU:

* the image enters as 2x2 patches (pixel unshuffle: 3 x S x S -> 12 x S/2 x S/2)
  and the prediction leaves the same way (pixel shuffle), so no layer runs at
  full resolution. Measured at 64 px, batch 32 on 2 CPU cores: a width-32
  UNet on patches (2.3M parameters) trains at 0.31 s per step, about what a
  width-16 UNet at full resolution (0.6M parameters) costs (0.27-0.28 s);
* one residual block per resolution on the way down and one on the way up,
  from S/2 down to 8x8, with channel multipliers by resolution
  (``WIDTH_MULT``: x1 at 64, x2 at 32 and 16, x4 at 8);
* residual blocks are GroupNorm -> SiLU -> 3x3 conv, twice, with the
  embedding applied as a scale and shift after the second GroupNorm; their
  last conv (and the output conv) start at zero, so each block starts as the
  identity and the untrained model predicts eps = 0;
* the embedding is an MLP of the sinusoidal timestep embedding plus a class
  embedding with one extra "null" row (id ``num_classes``) for
  classifier-free guidance;
* one single-head self-attention block at 8x8 (64 tokens: cheap) between two
  residual blocks in the middle;
* strided 3x3 convs downsample; a 3x3 conv then nearest-neighbour x2 upsamples.

No BatchNorm: one image gives the same output alone or in a batch, so the EMA
copy needs no recalibration.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import DiffusionConfig

# Channel multiplier of the base width at each resolution the UNet works at.
WIDTH_MULT = {64: 1, 32: 2, 16: 2, 8: 4}
LOWEST_RESOLUTION = 8
# Sinusoidal embedding as in the Transformer / DDPM: periods up to MAX_PERIOD timesteps.
MAX_PERIOD = 10000.0
# Side of the square pixel patches the UNet works on (pixel unshuffle in, pixel shuffle out).
PATCH = 2


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 4 channels per group (at most 32 groups), fewer groups if 4 does not divide."""
    return nn.GroupNorm(math.gcd(max(channels // 4, 1), 32), channels)


def zero_module(module: nn.Module) -> nn.Module:
    """``module`` with its parameters set to zero (the residual branch starts as a no-op)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of (integer) timesteps ``t`` (N,) -> N x dim: [cos(t f_k), sin(t f_k)]."""
    half = dim // 2
    freqs = torch.exp(-math.log(MAX_PERIOD) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    """Two GroupNorm-SiLU-conv layers with a scale/shift from the embedding, plus a (1x1) skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int) -> None:
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = group_norm(c_out)
        self.conv2 = zero_module(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1.0 + scale) + shift
        h = self.conv2(F.silu(h))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the pixels of a (small) feature map, residual."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_module(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)  # each N x HW x C
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(1, 2).reshape(n, c, h, w))


class Downsample(nn.Module):
    """Halves the feature map with a strided 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Doubles the feature map: 3x3 conv (at the low resolution: 4x cheaper), then nearest-neighbour x2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=2.0, mode="nearest")


def resolutions(image_size: int) -> list[int]:
    """The feature-map sizes the UNet works at, from image_size / PATCH down to 8."""
    out = [image_size // PATCH]
    while out[-1] > LOWEST_RESOLUTION:
        out.append(out[-1] // 2)
    return out


class UNet(nn.Module):
    """(x_t in N x 3 x S x S, timesteps t (N,) long, class ids (N,) long) -> predicted noise eps, N x 3 x S x S.

    Class id ``config.null_class`` means "no class" (classifier-free guidance).
    """

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config
        width = config.width
        emb_dim = 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.class_embed = nn.Embedding(config.num_classes + 1, emb_dim)

        sizes = resolutions(config.image_size)
        channels = [width * WIDTH_MULT[s] for s in sizes]
        self.stem = nn.Conv2d(3 * PATCH * PATCH, width, 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        c_prev = width
        for i, c in enumerate(channels):
            self.down_blocks.append(ResBlock(c_prev, c, emb_dim))
            if i < len(channels) - 1:
                self.downsamples.append(Downsample(c))
            c_prev = c
        self.mid1 = ResBlock(c_prev, c_prev, emb_dim)
        self.mid_attn = AttentionBlock(c_prev)
        self.mid2 = ResBlock(c_prev, c_prev, emb_dim)
        # up_blocks[i] works at sizes[i]: (features from below + skip of level i) -> channels[i].
        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for i in range(len(channels)):
            c_below = channels[i + 1] if i + 1 < len(channels) else c_prev
            self.up_blocks.append(ResBlock(c_below + channels[i], channels[i], emb_dim))
            if i > 0:
                self.upsamples.append(Upsample(channels[i]))
        self.out_norm = group_norm(channels[0])
        self.out_conv = zero_module(nn.Conv2d(channels[0], 3 * PATCH * PATCH, 3, padding=1))

    def embedding(self, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Time embedding (MLP of the sinusoid) plus class embedding, N x 4*width."""
        return self.time_mlp(timestep_embedding(t, self.config.width)) + self.class_embed(labels)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        emb = self.embedding(t, labels)
        h = self.stem(F.pixel_unshuffle(x, PATCH))
        skips = []
        for i, block in enumerate(self.down_blocks):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsamples):
                h = self.downsamples[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for i in reversed(range(len(self.up_blocks))):
            h = self.up_blocks[i](torch.cat([h, skips[i]], dim=1), emb)
            if i > 0:
                h = self.upsamples[i - 1](h)
        return F.pixel_shuffle(self.out_conv(F.silu(self.out_norm(h))), PATCH)
