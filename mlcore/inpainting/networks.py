"""The inpainting network. A pure nn.Module: no I/O, no losses, no randomness.

A fully convolutional UNet on (pre-filled photo, mask). The hole is first filled by ``smooth_fill`` (a multigrid
membrane fill: the boundary's colours continued smoothly into the hole), which is already a fair guess on flat backdrops and plain fabric; the network predicts a correction of it, so a
briefly trained network starts from that guess instead of from grey. The mask is a fourth channel so the
network knows which pixels are guesses. Layout, trimmed for a 2-core CPU:

* the input enters as 2 x 2 pixel patches (pixel unshuffle: 16 channels at half resolution), so no layer
  runs at full resolution;
* ``levels`` resolutions, width doubling at each, joined by 2 x 2 stride-2 convs down and 1 x 1 conv + pixel
  shuffle up with additive skips, one residual block per level each way
  (``mlcore.patch_unet.ResBlock``);
* at the coarsest level, residual blocks with dilated 3 x 3 convs (``config.dilations``): a large hole's
  centre is far from any visible pixel, and dilation reaches the context there without more downsampling
  (which would lose the detail that a small hole's fill needs). With the defaults (3 levels, dilations
  2, 4, 8, 1) one output pixel sees about 250 px of input in each direction.

Plain convs rather than gated ones: a gate doubles every conv's cost, and the mask channel plus the skips
already tell the decoder which pixels were real; on this budget the cheaper network trains more steps.
The output is the whole image (not clipped); only its hole pixels are used (``sampler`` composites).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..patch_unet import PatchUNet, ResBlock
from .config import InpaintConfig

# The fill of a photo with no visible pixel at all: the middle of [0, 1], the least biased guess.
HOLE_FILL = 0.5
# Relaxation steps per pyramid level in ``smooth_fill``: a hole pixel at level k is at most a few level-k
# pixels from the boundary, so a few steps per level converge where one level alone would need thousands.
SMOOTH_ITERATIONS = 12


def _neighbour_mean(image: torch.Tensor) -> torch.Tensor:
    """The mean of each pixel's 4 neighbours (edges replicated), per channel."""
    padded = F.pad(image, (1, 1, 1, 1), mode="replicate")
    return (padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:]) / 4


def smooth_fill(image: torch.Tensor, mask: torch.Tensor, iterations: int = SMOOTH_ITERATIONS) -> torch.Tensor:
    """``image`` (N x 3 x H x W) with its hole pixels (``mask`` N x 1 x H x W, 1 = hole) filled smoothly.

    A multigrid membrane (harmonic) fill. Push: halve the visible colours premultiplied by visibility, and the
    visibility, down to 1 x 1 (area averages). Pull: from the coarsest level up, each level is composited
    over the enlarged coarser one (colour + (1 - visibility) x coarser), then its fully hidden pixels are
    relaxed ``iterations`` times towards the mean of their neighbours (Jacobi steps of Laplace's equation,
    the hole's boundary held fixed). The coarse levels give every hole pixel a start from its surroundings
    in a few steps, the relaxation makes the fill continue the boundary's colours smoothly (as OpenCV's
    Navier-Stokes fill does) instead of showing the pyramid's blocks. Visible pixels come back unchanged;
    no parameters, no randomness.
    """
    visible = 1.0 - mask
    levels = [(image * visible, visible)]
    while max(levels[-1][1].shape[-2:]) > 1:
        colour, weight = levels[-1]
        size = ((colour.shape[-2] + 1) // 2, (colour.shape[-1] + 1) // 2)
        levels.append((F.interpolate(colour, size=size, mode="area"), F.interpolate(weight, size=size, mode="area")))
    colour, weight = levels[-1]
    filled = colour / weight.clamp_min(1e-6) * (weight > 0) + HOLE_FILL * (weight <= 0)
    for colour, weight in reversed(levels[:-1]):
        up = F.interpolate(filled, size=colour.shape[-2:], mode="bilinear", align_corners=False)
        # Premultiplied "over": where a level is partly visible its own average dominates the coarser guess.
        fixed = colour + (1.0 - weight) * up
        hidden = weight <= 0
        filled = fixed
        for _ in range(iterations):
            filled = torch.where(hidden, _neighbour_mean(filled), fixed)
    return torch.where(mask > 0.5, filled, image)


class DilatedBlock(nn.Module):
    """x + conv_d(relu(conv_d(x))), 3 x 3 convs with dilation d, no normalisation."""

    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


def network_input(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """N x 4 x H x W: the image (N x 3, in [0, 1]) with its hole pixels filled by ``smooth_fill``, and the mask
    (N x 1, 1 = hole). The hole's true pixels never reach the network."""
    return torch.cat([smooth_fill(image, mask), mask], dim=1)


class InpaintNet(PatchUNet):
    """(image N x 3 x H x W in [0, 1], mask N x 1 x H x W, 1 = hole) -> the filled image N x 3 x H x W.

    H and W must be multiples of ``config.alignment``."""

    def __init__(self, config: InpaintConfig) -> None:
        super().__init__(
            4, [config.width * 2**i for i in range(config.levels)], stage=ResBlock,
            middle=lambda w: nn.Sequential(*(DilatedBlock(w, d) for d in config.dilations)),
            alignment=config.alignment, head_relu=True,
        )
        self.config = config

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = network_input(image, mask)
        # Predicted as a correction of the pre-filled input: outside the hole the target is the input itself,
        # which the network then gets for free and the valid term stays small from the start; the last conv
        # starts at zero, so the untrained network is the push-pull fill.
        return x[:, :3] + self.correction(x)
