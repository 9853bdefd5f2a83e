"""Random global colour perturbations of a product: what training learns to undo.

A ``Perturbation`` is "the same product photographed under a different light or by another camera": an
exposure change and a white-balance shift (gains on linear light), a saturation change (on linear light,
around the pixel's luminance), then a gamma and a contrast change of the camera's tone curve (on sRGB
values), clipped to [0, 1] like any exported photo. These are the steps of ``transform`` in reverse order,
so ``inverse_params`` gives the transform that undoes a perturbation exactly (up to the clipping).

``random_perturbations`` draws each step independently with probability ``STEP_P`` (else leaves it at the
identity), uniformly in ``RANGES`` times a scale, so batches mix single edits and combinations; a share
``identity_p`` of the draws is left wholly unperturbed. The ranges are what a different studio lamp or camera
setting plausibly does: +-0.6 stops, a colour-temperature shift of about +-20% in the red/blue gains, up to
30% more or less saturation, and moderate gamma and contrast changes. Every draw comes from the caller's
``torch.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..cielab import RGB_TO_XYZ, linear_to_srgb, srgb_to_linear
from . import transform

# (low, high) of each parameter, uniform; gains and factors are drawn in log space.
RANGES: dict[str, tuple[float, float]] = {
    "exposure": (-0.6, 0.6),  # stops (log2 of the linear gain)
    "wb_red": (-0.2, 0.2),  # log gain of red, green fixed
    "wb_blue": (-0.2, 0.2),  # log gain of blue
    "saturation": (-0.35, 0.3),  # log factor of the chroma around luminance (x0.70 .. x1.35)
    "gamma": (-0.25, 0.25),  # log gamma of the sRGB values
    "contrast": (-0.25, 0.25),  # log slope around sRGB 0.5
}
STEP_P = 0.6
# Luminance weights of linear RGB (the Y row of the sRGB -> XYZ matrix): saturation pivots around it.
LUMINANCE = RGB_TO_XYZ[1]


@dataclass
class Perturbation:
    """One perturbation per image: tensors of shape (N,) named as ``RANGES``."""

    exposure: torch.Tensor
    wb_red: torch.Tensor
    wb_blue: torch.Tensor
    saturation: torch.Tensor
    gamma: torch.Tensor
    contrast: torch.Tensor

    def __len__(self) -> int:
        return len(self.exposure)

    def select(self, index: torch.Tensor | slice) -> Perturbation:
        return Perturbation(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def identity_perturbation(count: int) -> Perturbation:
    """``count`` perturbations that change nothing."""
    return Perturbation(**{name: torch.zeros(count) for name in RANGES})


def random_perturbations(
    count: int, rng: torch.Generator, *, identity_p: float = 0.0, scale: float = 1.0, step_p: float = STEP_P,
) -> Perturbation:
    """``count`` random perturbations (module docstring), drawn from ``rng`` in a fixed order."""
    values = {}
    for name, (low, high) in RANGES.items():
        uniform = torch.rand(count, generator=rng)
        used = torch.rand(count, generator=rng) < step_p
        values[name] = torch.where(used, (low + (high - low) * uniform) * scale, torch.zeros(count))
    unchanged = torch.rand(count, generator=rng) < identity_p
    return Perturbation(**{name: torch.where(unchanged, torch.zeros(count), v) for name, v in values.items()})


def light_matrix(p: Perturbation) -> torch.Tensor:
    """The linear-light part of ``p``: N x 3 x 3, saturation S after the gains G (S @ G)."""
    gain = torch.exp(torch.stack((p.wb_red, torch.zeros_like(p.wb_red), p.wb_blue), dim=-1))
    gain = gain * torch.pow(2.0, p.exposure)[:, None]
    s = torch.exp(p.saturation)[:, None, None]
    eye = torch.eye(3)
    # S = s I + (1 - s) 1 w^T: luminance (w . rgb) is kept, the chroma around it scaled by s.
    saturation = s * eye + (1 - s) * torch.ones(3, 1) * LUMINANCE[None, :]
    return saturation * gain[:, None, :]


def apply_perturbation(rgb: torch.Tensor, p: Perturbation) -> torch.Tensor:
    """Every pixel of ``rgb`` (N x 3 x H x W sRGB in [0, 1]) perturbed by its image's ``p``; clipped to [0, 1].
    An image whose perturbation is the identity comes back exactly as it was (not through the sRGB round trip):
    training's "nothing to undo" samples must be exactly that."""
    m = light_matrix(p).to(rgb.device, rgb.dtype)
    linear = torch.einsum("nij,njhw->nihw", m, srgb_to_linear(rgb))
    tone = linear_to_srgb(linear).clamp_min(transform.POWER_FLOOR)
    gamma = torch.exp(p.gamma).to(rgb.device, rgb.dtype)[:, None, None, None]
    contrast = torch.exp(p.contrast).to(rgb.device, rgb.dtype)[:, None, None, None]
    out = (0.5 + contrast * (tone.pow(gamma) - 0.5)).clamp(0.0, 1.0)
    unchanged = torch.stack([getattr(p, f.name) == 0 for f in fields(p)]).all(dim=0).to(rgb.device)
    return torch.where(unchanged[:, None, None, None], rgb, out)


def inverse_params(p: Perturbation, bounds: torch.Tensor | None = None) -> torch.Tensor:
    """The transform parameters (N x 14) that undo ``p``: the inverse light matrix and the inverse tone steps
    (``transform``'s order is the reverse of this module's, so the inverse is a member of its family).

    With ``bounds`` (``transform.limits``) each parameter is clamped just inside its bound, as the network's
    would be. Clipped highlights and shadows stay lost."""
    inverse = torch.linalg.inv(light_matrix(p).double())
    diagonal = inverse.diagonal(dim1=-2, dim2=-1)
    if bool((diagonal <= 0).any()):
        raise ValueError("perturbation too strong: its inverse matrix has a non-positive diagonal")
    params = torch.zeros(len(p), transform.PARAMS, dtype=torch.float64)
    params[:, transform.LOG_GAIN] = diagonal.log()
    for k, (row, column) in enumerate(transform.OFF_DIAGONAL):
        params[:, transform.MIX.start + k] = inverse[:, row, column] / diagonal[:, row]
    # Tone: y = 0.5 + c (v ** g - 0.5) is undone by u = 0.5 + (y - 0.5) / c, then v = u ** (1 / g).
    params[:, transform.LOG_CONTRAST] = -p.contrast.double()
    params[:, transform.LOG_GAMMA] = -p.gamma.double()
    params = params.float()
    if bounds is not None:
        limit = bounds * (1 - 1e-4)
        params = torch.maximum(torch.minimum(params, limit), -limit)
    return params
