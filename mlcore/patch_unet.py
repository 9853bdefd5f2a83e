"""The fully convolutional UNet the photo networks share (restoration's ``LocalNet``, ``InpaintNet``).

The input enters as PATCH x PATCH pixel patches (pixel unshuffle), so no layer runs at full resolution;
``widths`` gives one level each, joined by 2 x 2 stride-2 convs down and 1 x 1 conv + pixel shuffle up with
additive skips; ``stage(width)`` makes each level's blocks on both sides and ``middle(width)`` the coarsest
level's. The output is a correction, pixel-shuffled back to full resolution, whose last conv starts at
zero: an untrained network changes nothing. No global operation anywhere, so tiles with enough overlap
reproduce the untiled result. A pure nn.Module.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

PATCH = 2


class ResBlock(nn.Module):
    """x + conv(relu(conv(x))), 3 x 3 convs, no normalisation."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class PatchUNet(nn.Module):
    """``correction(x)``: N x in_channels x H x W (H, W multiples of ``alignment``) -> N x 3 x H x W."""

    def __init__(
        self,
        in_channels: int,
        widths: list[int],
        *,
        stage: Callable[[int], nn.Module],
        middle: Callable[[int], nn.Module],
        alignment: int,
        head_relu: bool = False,
    ) -> None:
        super().__init__()
        self.alignment, self.head_relu = alignment, head_relu
        # Built in this order so seeded weights stay as they were when each network built its own.
        self.head = nn.Conv2d(in_channels * PATCH * PATCH, widths[0], 3, padding=1)
        self.encoders = nn.ModuleList(stage(w) for w in widths[:-1])
        self.downs = nn.ModuleList(nn.Conv2d(w, 2 * w, 2, stride=2) for w in widths[:-1])
        self.middle = middle(widths[-1])
        self.ups = nn.ModuleList(nn.Conv2d(2 * w, 4 * w, 1) for w in widths[:-1])
        self.decoders = nn.ModuleList(stage(w) for w in widths[:-1])
        self.tail = nn.Conv2d(widths[0], 3 * PATCH * PATCH, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def correction(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.alignment or x.shape[-2] % self.alignment:
            raise ValueError(f"input sides must be multiples of {self.alignment}, got {tuple(x.shape[-2:])}")
        h = self.head(F.pixel_unshuffle(x, PATCH))
        if self.head_relu:
            h = F.relu(h)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            h = encoder(h)
            skips.append(h)
            h = down(h)
        h = self.middle(h)
        for i in reversed(range(len(self.ups))):
            h = F.pixel_shuffle(self.ups[i](h), 2) + skips[i]
            h = self.decoders[i](h)
        return F.pixel_shuffle(self.tail(h), PATCH)
