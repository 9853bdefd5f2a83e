"""The harmonisation network: (composite, alpha) squeezed to a small square -> one bounded global colour
transform of the product (``transform``).

What the network must judge is how the product's colours relate to its backdrop's (a product lit warmer or
darker than the scene), so it is given that comparison explicitly: its convolutional features are pooled
twice, weighted by the alpha (the product) and by 1 - alpha (the backdrop), and the CIELAB mean and spread of
both regions join them before the head. Global pooling makes the output one transform per image, whatever
the image. No BatchNorm: a composite maps the same alone or in a batch, and the EMA copy needs no
recalibration. The last layer starts at zero, so an untrained network predicts the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..cielab import srgb_to_lab
from .config import HarmoniseConfig
from .transform import PARAMS, limits, squash

# Quantile levels of each region's L*, a* and b* (the shape of its histograms: clipped highlights, a lifted
# black, a squeezed range tell exposure, gamma and contrast changes apart).
LEVELS = (0.05, 0.25, 0.5, 0.75, 0.95)
# Lab mean, std and quantiles of the product and of the backdrop, and the product's share of the image.
STATISTICS = 2 * (6 + 3 * len(LEVELS)) + 1
# Keeps the weighted means finite when a region is empty (a product that covers the whole image).
EPS = 1e-4


def weighted_mean(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean of N x C x H x W ``x`` over its pixels, weighted by N x 1 x H x W ``weight`` -> N x C."""
    return (x * weight).sum(dim=(2, 3)) / (weight.sum(dim=(2, 3)) + EPS)


def masked_quantiles(values: torch.Tensor, inside: torch.Tensor, levels: tuple[float, ...] = LEVELS) -> torch.Tensor:
    """Quantiles (nearest rank) of N x C x H x W ``values`` over the pixels where N x 1 x H x W ``inside`` is
    true -> N x C*len(levels); zeros for an image with no such pixel."""
    n, c = values.shape[:2]
    flat = values.flatten(2).masked_fill(~inside.flatten(2), float("inf")).sort(dim=2).values
    count = inside.flatten(1).sum(dim=1)
    rank = torch.tensor(levels, device=values.device)[None, :] * (count[:, None] - 1).clamp_min(0)
    index = rank.round().long()[:, None, :].expand(n, c, len(levels))
    picked = flat.gather(2, index)
    return torch.where(count[:, None, None] > 0, picked, torch.zeros_like(picked)).flatten(1)


def region_statistics(composite: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """N x STATISTICS: CIELAB mean, std and quantiles of the product (weighted by alpha; quantiles over
    alpha > 0.5) and of the backdrop (1 - alpha; alpha < 0.5), scaled by 1/100, and the product's share."""
    lab = srgb_to_lab(composite) / 100.0
    parts = []
    for weight, inside in ((alpha, alpha > 0.5), (1.0 - alpha, alpha < 0.5)):
        mean = weighted_mean(lab, weight)
        variance = weighted_mean((lab - mean[:, :, None, None]).pow(2), weight)
        parts += [mean, (variance + EPS).sqrt(), masked_quantiles(lab, inside)]
    return torch.cat([*parts, alpha.mean(dim=(2, 3))], dim=1)


class HarmoniseNet(nn.Module):
    """N x 3 x S x S composites in [0, 1] and N x 1 x S x S alphas -> N x 14 transform parameters, each inside
    the config's bounds (``transform.squash``)."""

    def __init__(self, config: HarmoniseConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        widths = [4, w, 2 * w, 3 * w, 3 * w]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, stride=2, padding=1) for c_in, c_out in zip(widths[:-1], widths[1:])
        )
        self.head = nn.Sequential(
            nn.Linear(2 * widths[-1] + STATISTICS, config.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(config.hidden, config.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(config.hidden, PARAMS),
        )
        with torch.no_grad():
            self.head[-1].weight.zero_()
            self.head[-1].bias.zero_()
        # A function of the config, rebuilt identically on load: not saved.
        self.register_buffer("bounds", limits(config), persistent=False)

    def forward(self, composite: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        h = torch.cat((composite, alpha), dim=1) * 2.0 - 1.0
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        small = F.adaptive_avg_pool2d(alpha, h.shape[-2:])
        features = torch.cat(
            (weighted_mean(h, small), weighted_mean(h, 1.0 - small), region_statistics(composite, alpha)), dim=1
        )
        return squash(self.head(features), self.bounds)
