"""3D colour lookup tables: ``3 x M x M x M`` tensors applied to sRGB pixels by trilinear interpolation.

Layout: ``lut[c, b, g, r]`` is output channel c (0 = R, 1 = G, 2 = B) at the node (r, g, b) / (M - 1), so the
blue input indexes the depth axis, green the height and red the width: what ``grid_sample`` expects for a
5-D input with grid coordinates (x, y, z) = (r, g, b). Nodes sit at the corners of the cells
(``align_corners=True``), so inputs 0 and 1 hit the first and last nodes exactly and interpolating the
identity table gives back the input (trilinear interpolation reproduces affine functions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Pixels per grid_sample call at full resolution: bounds the temporary grid (12 bytes a pixel) for 24 MP photos.
CHUNK_PIXELS = 1 << 20


def identity_lut(size: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The table that maps every colour to itself, ``3 x size x size x size``."""
    if size < 2:
        raise ValueError(f"a LUT needs at least 2 nodes per axis, got {size}")
    ramp = torch.linspace(0.0, 1.0, size, dtype=torch.float64)
    b, g, r = torch.meshgrid(ramp, ramp, ramp, indexing="ij")
    return torch.stack((r, g, b)).to(dtype)


def apply_lut(rgb: torch.Tensor, luts: torch.Tensor) -> torch.Tensor:
    """``rgb`` (N x 3 x H x W, floats in [0, 1]) through per-image ``luts`` (N x 3 x M x M x M).

    Differentiable in both (the LUT's gradient is what training learns from). Inputs outside [0, 1] are
    clamped to the cube's faces; the output is not clamped (the caller decides)."""
    if rgb.dim() != 4 or rgb.shape[1] != 3:
        raise ValueError(f"rgb must be N x 3 x H x W, got {tuple(rgb.shape)}")
    if luts.dim() != 5 or luts.shape[:2] != (rgb.shape[0], 3) or len(set(luts.shape[2:])) != 1:
        raise ValueError(f"luts must be N x 3 x M x M x M for N = {rgb.shape[0]}, got {tuple(luts.shape)}")
    n, _, h, w = rgb.shape
    grid = rgb.clamp(0.0, 1.0).permute(0, 2, 3, 1).reshape(n, 1, 1, h * w, 3) * 2.0 - 1.0
    out = F.grid_sample(luts.to(rgb.dtype), grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(n, 3, h, w)


@torch.inference_mode()
def apply_lut_large(rgb: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """One image (3 x H x W in [0, 1]) through one ``lut`` (3 x M x M x M), in row chunks so that memory stays
    bounded at any size; same result as ``apply_lut``. Output clamped to [0, 1]."""
    _, h, w = rgb.shape
    rows = max(1, CHUNK_PIXELS // max(1, w))
    parts = [apply_lut(rgb[None, :, top : top + rows], lut[None])[0] for top in range(0, h, rows)]
    return torch.cat(parts, dim=1).clamp_(0.0, 1.0)
