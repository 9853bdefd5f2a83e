"""The segmentation network: a small U-Net. Pure nn.Module: no I/O, no losses, no randomness.

Layout, chosen for a 2-core CPU budget:
- a stride-2 stem, so no convolution runs at the input resolution (the mask is refined against the
  full-resolution photo afterwards, ``refine.py``, which is far cheaper than convolving there);
- per level two 3 x 3 convolutions with a residual connection, GroupNorm and SiLU; levels halve the
  resolution with a strided convolution;
- global context at the deepest level (the pooled features added back everywhere): which blob is
  "the product" is a decision about the whole picture, beyond any convolution's receptive field;
- a decoder with one 3 x 3 convolution per level over the upsampled features and the skip.
GroupNorm rather than BatchNorm: outputs do not depend on the batch, so the EMA copy needs no
recalibration and a photo segments the same alone or in a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import SegmenterConfig


def _norm(channels: int) -> nn.GroupNorm:
    # 4 channels per group at most widths here; GroupNorm(1) would mix every channel's statistics.
    return nn.GroupNorm(max(1, channels // 4), channels)


class ConvNormAct(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), _norm(c_out), nn.SiLU())


class ResidualBlock(nn.Module):
    """Two 3 x 3 convolutions plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.first = ConvNormAct(channels, channels)
        self.second = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1, bias=False), _norm(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(x + self.second(self.first(x)))


class GlobalContext(nn.Module):
    """Adds a learned function of the globally pooled features to every position."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mix = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(x.mean(dim=(2, 3)))[:, :, None, None]


class SegmentationNet(nn.Module):
    """RGB in [-1, 1], N x 3 x S x S -> mask logits N x 1 x S x S (positive: product)."""

    def __init__(self, config: SegmenterConfig) -> None:
        super().__init__()
        self.config = config
        widths = config.widths
        self.stem = ConvNormAct(3, widths[0], stride=2)
        self.encoder = nn.ModuleList([ResidualBlock(widths[0])])
        self.downs = nn.ModuleList()
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            self.downs.append(ConvNormAct(c_in, c_out, stride=2))
            self.encoder.append(ResidualBlock(c_out))
        self.context = GlobalContext(widths[-1])
        self.decoder = nn.ModuleList(
            ConvNormAct(c_deep + c_skip, c_skip) for c_deep, c_skip in zip(widths[:0:-1], widths[-2::-1])
        )
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        h = self.encoder[0](self.stem(x))
        skips = [h]
        for down, block in zip(self.downs, self.encoder[1:]):
            h = block(down(h))
            skips.append(h)
        h = self.context(skips.pop())
        for block in self.decoder:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = block(torch.cat((h, skip), dim=1))
        return F.interpolate(self.head(h), size=size, mode="bilinear", align_corners=False)
