"""The image-adaptive LUT model (after Zeng et al. 2020, "Learning Image-adaptive 3D Lookup Tables"), with the
target look as a second input. Pure nn.Modules: no I/O, no losses, no randomness.

The output for a photo is ONE colour table, identity + sum_k w_k T_k, applied to every pixel: the result is a
function of the pixel's colour alone, so shape, edges and texture are kept by construction, and the cost at
full resolution is one trilinear lookup per pixel whatever the network's size. The T_k are the fixed analytic
tables of ``basis`` followed by learned residual tables. Weights are unbounded (not a softmax), so the tables
span a linear space of colour transforms (curves, matrices and casts combine linearly there). No BatchNorm: one photo maps the same alone or in a batch, and the EMA copy needs
no recalibration.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import BrandLookConfig
from .basis import analytic_basis
from .look import VECTOR_SIZE
from .lut import identity_lut


class LUTBank(nn.Module):
    """Identity plus the analytic tables and ``learned_luts`` learned residual tables, mixed by per-photo weights."""

    def __init__(self, config: BrandLookConfig) -> None:
        super().__init__()
        m = config.lut_size
        # Not saved: both are functions of the config, rebuilt identically on load.
        self.register_buffer("identity", identity_lut(m), persistent=False)
        self.register_buffer("basis", analytic_basis(m, config.curve_knots, config.luma_knots), persistent=False)
        # Zero residuals keep the start at the identity map; their weights are non-zero from the start (see
        # WeightPredictor), so they get gradients at once (w_k * dLoss/dLUT).
        self.residuals = nn.Parameter(torch.zeros(config.learned_luts, 3, m, m, m))

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        """N x num_tables weights -> N x 3 x M x M x M tables."""
        tables = torch.cat((self.basis, self.residuals))
        return self.identity + torch.einsum("nk,kcdhw->ncdhw", weights, tables)


class WeightPredictor(nn.Module):
    """(thumbnail in [0, 1], own look vector, target look vector, target noise) -> N x num_tables table weights."""

    def __init__(self, config: BrandLookConfig) -> None:
        super().__init__()
        w = config.width
        widths = [3, w, 2 * w, 4 * w, 4 * w]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, stride=2 if i < 3 else 1, padding=1)
            for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:]))
        )
        # The difference of the looks is given explicitly: it is what the mapping mostly depends on.
        self.head = nn.Sequential(
            nn.Linear(widths[-1] + 3 * VECTOR_SIZE + 1, config.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(config.hidden, config.hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(config.hidden, config.num_tables),
        )
        # The analytic tables' weights start at zero (the identity map, a sane first output); the learned
        # tables' keep their random start, or neither they nor their weights would ever get a gradient.
        last = self.head[-1]
        with torch.no_grad():
            fixed = config.num_tables - config.learned_luts
            last.weight[:fixed].zero_()
            last.bias[:fixed].zero_()

    def forward(self, thumb: torch.Tensor, own: torch.Tensor, target: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        h = thumb * 2.0 - 1.0
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        h = h.mean(dim=(2, 3))
        return self.head(torch.cat([h, own, target, target - own, noise.to(h.dtype).view(-1, 1)], dim=1))


class AdaptiveLUT(nn.Module):
    """The whole model: one table per photo from its thumbnail, its own look and the target look."""

    def __init__(self, config: BrandLookConfig) -> None:
        super().__init__()
        self.config = config
        self.predictor = WeightPredictor(config)
        self.bank = LUTBank(config)

    def forward(self, thumb: torch.Tensor, own: torch.Tensor, target: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """N x 3 x T x T thumbnails, N x VECTOR_SIZE look vectors (own, target) and N target-look noise levels
        (``look.reference_noise`` of its number of photos) -> N x 3 x M x M x M tables."""
        return self.bank(self.predictor(thumb, own, target, noise))
