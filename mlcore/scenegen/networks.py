"""The scene GAN's two networks, a CPU-sized take on FastGAN (Liu et al. 2021). Pure nn.Modules: no I/O, no
losses.

A scene set is tens to hundreds of photos, and FastGAN is the GAN built for that (100-shot sets at 256 px and
up). Its two ideas are cheap and both are kept:

* **skip-layer excitation** (SLE) in the generator: the three finest feature levels are gated, channel by
  channel, by a squeeze of a level 8x coarser, so the coarse layout (where the wall meets the floor, the
  light falloff) steers the fine texture directly and gradients reach the coarse levels in one hop;
* a **self-supervised discriminator**: small decoders rebuild the (augmented) real image from the
  discriminator's 8 x 8 features and a random quarter of its 16 x 16 ones, so it cannot get by on memorising
  a few training images. Compared in pixels (L1 at <= 64 px): there are no pretrained perceptual networks.

What differs, each measured on 150 clothing-photo backdrops at 256 px, 1 shared CPU thread, a few hundred
steps (the scene generator report has the numbers):

* the generator is DCGAN-cheap (one resize-conv, BatchNorm, ReLU per level, widths an eighth of FastGAN's,
  no GLU, no noise injection: a backdrop is a function of its z alone, so a seed reproduces it), with
  **skip outputs** (StyleGAN2's "skip" generator): every level adds its own RGB to the enlarged sum of the
  coarser ones, the fine ones starting at zero. Backdrops are mostly smooth colour fields with grain; with
  this the first hundreds of steps draw colour fields, without it they drew blobs on grey;
* the discriminator has **no spectral norm** and no normalisation, with He initialisation: with spectral
  norm its logits stayed near 0 (d_loss ~2, nothing learnt) for the first 150-400 steps, the whole budget
  of a CPU training; real and generated images share its batch, which batch statistics would mix. Its
  regularisers are DiffAugment, the reconstruction and (optional) R1;
* one discriminator scale, FastGAN's two-path down blocks only at the coarse levels (at the fine ones the
  extra 3 x 3 conv costs most), and patch logits (a 5 x 5 map over the 8 x 8 features).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import SceneGANConfig

# Widths are capped at this multiple of the base width: wider coarse levels cost time and add nothing at
# this data size.
MAX_MULT = 8
# The generator's coarse levels (up to this side) get a second conv; at the fine ones each conv costs 16x
# more per channel.
EXTRA_CONV_MAX_SIDE = 32
# SLE gates the finest feature levels from the level this many times coarser (at 256 px: 4 -> 32, 8 -> 64,
# 16 -> 128; FastGAN gates 4 -> 64 ... 16 -> 256, but here the finest features are at half resolution).
SLE_RATIO = 8
SLE_LEVELS = 3
# The generator's skip outputs from this side up (and its full-resolution layer) start at zero.
SILENT_FROM_SIDE = 16
# The reconstruction decoders draw images of at most this side.
RECON_MAX_SIDE = 64
# The discriminator's features at this side give the logits and the global reconstruction.
D_FINAL_SIDE = 8


def level_sides(image_size: int) -> list[int]:
    """4, 8, ..., image_size: the generator's resolutions."""
    return [4 * 2**i for i in range(int(math.log2(image_size)) - 1)]


def generator_width(config: SceneGANConfig, side: int) -> int:
    """Channels at ``side`` (< image_size): ``g_width`` at half resolution, doubling per coarser level up to
    ``MAX_MULT`` x ``g_width``."""
    return config.g_width * min(MAX_MULT, config.image_size // (2 * side))


def discriminator_width(config: SceneGANConfig, side: int) -> int:
    """Channels of the discriminator's features at ``side`` (<= image_size / 2), the same schedule."""
    return config.d_width * min(MAX_MULT, config.image_size // (2 * side))


def recon_side(image_size: int) -> int:
    """Side of the reconstructed images: image_size / 2, at most ``RECON_MAX_SIDE``."""
    return min(RECON_MAX_SIDE, image_size // 2)


class UpBlock(nn.Module):
    """2x nearest upsampling, 3 x 3 conv -> BatchNorm -> ReLU, and at coarse levels (``extra``) one conv more,
    where it is cheap and the layout is decided. Resize-then-convolve, not a transposed conv: the 4 x 4
    stride-2 transposed conv drew a checkerboard over every sample of a few hundred steps (Odena et al. 2016)."""

    def __init__(self, c_in: int, c_out: int, extra: bool) -> None:
        super().__init__()
        # No bias: BatchNorm follows.
        layers: list[nn.Module] = [
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        ]
        if extra:
            layers += [nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class SkipExcitation(nn.Module):
    """SLE: a channel gate for fine features computed from coarse ones (pooled to 4 x 4, a 4 x 4 conv to 1 x 1,
    swish, 1 x 1 conv, sigmoid)."""

    def __init__(self, c_coarse: int, c_fine: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4), nn.Conv2d(c_coarse, c_fine, 4, bias=False), nn.SiLU(),
            nn.Conv2d(c_fine, c_fine, 1, bias=False), nn.Sigmoid(),
        )

    def forward(self, coarse: torch.Tensor, fine: torch.Tensor) -> torch.Tensor:
        return fine * self.gate(coarse)


class Generator(nn.Module):
    """Noise z (N x z_dim) -> backdrop in [-1, 1], N x 3 x S x S. BatchNorm: the EMA copy needs its own
    statistics before it samples (``objective.SceneGANObjective.calibrate_ema``)."""

    def __init__(self, config: SceneGANConfig) -> None:
        super().__init__()
        self.config = config
        # Feature levels 4 ... S/2; the last layer draws the S x S image from S/2.
        self.sides = level_sides(config.image_size)[:-1]
        widths = [generator_width(config, side) for side in self.sides]
        self.stem_width = widths[0]
        # z alone sets the 4 x 4 layout; no bias, as in mlcore.gan: a bias is a per-position template the
        # generator can fall back on.
        self.stem = nn.Linear(config.z_dim, 16 * widths[0], bias=False)
        self.stem_norm = nn.BatchNorm2d(widths[0])
        self.ups = nn.ModuleList(
            UpBlock(c_in, c_out, side <= EXTRA_CONV_MAX_SIDE)
            for c_in, c_out, side in zip(widths[:-1], widths[1:], self.sides[1:])
        )
        # The gated levels, by index into ``sides``: the finest SLE_LEVELS whose source level exists.
        index = {side: i for i, side in enumerate(self.sides)}
        first = max(1, len(self.sides) - SLE_LEVELS)
        self.sle_sources = {
            i: index[self.sides[i] // SLE_RATIO] for i in range(first, len(self.sides)) if self.sides[i] // SLE_RATIO in index
        }
        self.sle = nn.ModuleDict(
            {str(i): SkipExcitation(widths[source], widths[i]) for i, source in self.sle_sources.items()}
        )
        # Skip outputs (StyleGAN2's "skip" generator): every level adds its own RGB, 1 x 1 conv, to the
        # coarser levels' enlarged sum. A colour field with its light falloff is then the 4 x 4 level's output
        # enlarged, learnt in the first hundred steps, and the finer levels only add detail; without them the
        # samples of a few hundred steps were blobs on grey (the fine levels had to learn the layout too).
        self.skips = nn.ModuleList(nn.Conv2d(width, 3, 1) for width in widths)
        # The full-resolution detail: a 3 x 3 conv at half resolution to 2 x 2 pixels each (pixel shuffle),
        # a fraction of the cost of convolving upsampled features at full resolution.
        self.to_rgb = nn.Sequential(nn.Conv2d(widths[-1], 12, 3, padding=1), nn.PixelShuffle(2))
        # The fine levels start silent (zero weights): the untrained generator draws smooth colour fields, and
        # detail appears as the discriminator asks for it, instead of starting as noise the discriminator must
        # first teach away.
        for layer in [*(skip for skip, side in zip(self.skips, self.sides) if side >= SILENT_FROM_SIDE), self.to_rgb[0]]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.stem_norm(self.stem(z).view(-1, self.stem_width, 4, 4)))
        features = [h]
        rgb = self.skips[0](h)
        for i, up in enumerate(self.ups, 1):
            h = up(features[-1])
            if i in self.sle_sources:
                h = self.sle[str(i)](features[self.sle_sources[i]], h)
            features.append(h)
            rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + self.skips[i](h)
        rgb = F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + self.to_rgb(h)
        return torch.tanh(rgb)


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Conv2d:
    """A discriminator conv with He initialisation for LeakyReLU(0.2): activations keep their scale through
    the layers, so the untrained logits already vary between images (std 0.07 at 256 px, against 0.0002 with
    PyTorch's default initialisation, which shrinks them layer by layer) and the first steps have a signal."""
    conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding)
    nn.init.kaiming_normal_(conv.weight, a=0.2, nonlinearity="leaky_relu")
    nn.init.zeros_(conv.bias)
    return conv


class DownBlock(nn.Module):
    """FastGAN's two-path downsampling at coarse levels (``two_path``): (4 x 4 stride-2 conv, 3 x 3 conv) beside
    (2 x 2 average pool, 1 x 1 conv), averaged; at fine levels, where a 3 x 3 conv costs most, the strided conv
    alone. LeakyReLU, no normalisation."""

    def __init__(self, c_in: int, c_out: int, two_path: bool) -> None:
        super().__init__()
        main: list[nn.Module] = [_conv(c_in, c_out, 4, 2, 1), nn.LeakyReLU(0.2)]
        if two_path:
            main += [_conv(c_out, c_out, 3, 1, 1), nn.LeakyReLU(0.2)]
        self.main = nn.Sequential(*main)
        self.direct = nn.Sequential(nn.AvgPool2d(2), _conv(c_in, c_out, 1), nn.LeakyReLU(0.2)) if two_path else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.direct is None:
            return self.main(x)
        return (self.main(x) + self.direct(x)) / 2


class Decoder(nn.Module):
    """8 x 8 discriminator features -> an RGB image of ``side`` in [-1, 1] (the reconstruction head)."""

    def __init__(self, c_in: int, width: int, side: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(c_in, width, 1), nn.LeakyReLU(0.2)]
        for _ in range(int(math.log2(side // D_FINAL_SIDE))):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(width, 3, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Discriminator(nn.Module):
    """Image N x 3 x S x S -> realness logits N x 25 (a 5 x 5 map over the 8 x 8 features: each logit judges a
    large patch, and the loss averages them); ``features`` also returns what the decoders rebuild from."""

    def __init__(self, config: SceneGANConfig) -> None:
        super().__init__()
        self.config = config
        sides = [config.image_size // 2 // 2**i for i in range(int(math.log2(config.image_size // 2 // D_FINAL_SIDE)) + 1)]
        widths = [discriminator_width(config, side) for side in sides]
        self.from_rgb = nn.Sequential(_conv(3, widths[0], 4, 2, 1), nn.LeakyReLU(0.2))
        self.downs = nn.ModuleList(
            DownBlock(c_in, c_out, side <= EXTRA_CONV_MAX_SIDE)
            for c_in, c_out, side in zip(widths[:-1], widths[1:], sides[1:])
        )
        self.sides = sides
        final = widths[-1]
        self.head = nn.Sequential(_conv(final, final, 1), nn.LeakyReLU(0.2), _conv(final, 1, 4))
        self.part_width = widths[sides.index(2 * D_FINAL_SIDE)]
        side = recon_side(config.image_size)
        decoder_width = max(8, config.d_width)
        # Left out (not merely unused) when off, so its weights are neither trained nor saved.
        self.decoder = Decoder(final, decoder_width, side) if config.recon_weight > 0 else None
        self.part_decoder = Decoder(self.part_width, decoder_width, side) if config.recon_weight > 0 else None

    def features(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits N x 25, 8 x 8 features, 16 x 16 features)."""
        h = self.from_rgb(images)
        by_side = {self.sides[0]: h}
        for side, down in zip(self.sides[1:], self.downs):
            h = down(h)
            by_side[side] = h
        return self.head(h).flatten(1), h, by_side[2 * D_FINAL_SIDE]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)[0]

    def reconstruct(self, final: torch.Tensor, middle: torch.Tensor, quarter: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the whole image rebuilt from the 8 x 8 features, quarter ``quarter`` (0-3: top-left, top-right,
        bottom-left, bottom-right) rebuilt from that quarter of the 16 x 16 features), both ``recon_side``."""
        if self.decoder is None or self.part_decoder is None:
            raise ValueError("this discriminator has no reconstruction head (recon_weight is 0)")
        row, col = divmod(quarter, 2)
        part = middle[:, :, row * D_FINAL_SIDE : (row + 1) * D_FINAL_SIDE, col * D_FINAL_SIDE : (col + 1) * D_FINAL_SIDE]
        return self.decoder(final), self.part_decoder(part)


def reconstruction_targets(images: torch.Tensor, quarter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``Discriminator.reconstruct`` should give for ``images``: the image, and its quarter ``quarter``,
    both area-downsampled to ``recon_side``."""
    side = recon_side(images.shape[-1])
    whole = F.interpolate(images, size=(side, side), mode="area")
    double = F.interpolate(images, size=(2 * side, 2 * side), mode="area") if images.shape[-1] != 2 * side else images
    row, col = divmod(quarter, 2)
    return whole, double[:, :, row * side : (row + 1) * side, col * side : (col + 1) * side]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (for logs and reports)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
