"""The bounded global colour transform the harmonisation model predicts, how it is applied, and the ΔE budget.

Pure functions of tensors. A transform is a vector of ``PARAMS`` = 14 numbers, all 0 for the identity:

    index  name          applied to           meaning
    0..2   log_gain      linear light         per-channel gain (exposure and white balance)
    3..8   mix           linear light         off-diagonal entries of the colour matrix (saturation, hue casts)
    9      log_gamma     sRGB                 gamma (mid-tones)
    10     log_contrast  sRGB, around 0.5     contrast
    11..13 bias          sRGB                 per-channel offset (lifted or crushed blacks)

applied to an sRGB colour x in [0, 1] in this order (``apply_transform``):

    u = clamp(0.5 + exp(log_contrast) (x - 0.5) + bias)        tone, on sRGB values
    v = u ** exp(log_gamma)
    y = srgb(M · linear(v)),  M = diag(exp(log_gain)) (I + mix)  light, on linear light (clipped to the gamut)

Why this family: light changes act on linear light (a brighter lamp multiplies it, a coloured one scales the
channels, von Kries), and a camera's tone curve acts on the encoded values. The random perturbations training
learns to undo (``perturb``) are the same steps in the reverse order, so the exact inverse of every one of
them is a member of this family (``perturb.inverse_params``).

"Global": the result is a function of the pixel's colour alone, so two pixels of equal colour stay equal and
no texture or edge is made or lost. "Bounded": the network's raw outputs pass through ``squash`` (tanh times
the config's limit per part), so no output can be an extreme change. The ΔE budget (``bounded``) then caps
what the transform may do to the product's actual colours.

ΔE here is CIE76 (Euclidean distance in CIELAB, D65): simple, monotone in every Lab coordinate and larger
than CIEDE2000 for saturated colours, so a budget in CIE76 is a conservative budget in CIEDE2000 there.
"""

from __future__ import annotations

import math

import torch

from ..cielab import linear_to_srgb, srgb_to_lab, srgb_to_linear

PARAMS = 14
LOG_GAIN = slice(0, 3)
MIX = slice(3, 9)
LOG_GAMMA = 9
LOG_CONTRAST = 10
BIAS = slice(11, 14)
# (row, column) of the six off-diagonal matrix entries, in the order of the ``MIX`` parameters.
OFF_DIAGONAL = ((0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1))
# Gamma is applied to values at least this large: the derivative of u ** gamma is infinite at 0 for gamma < 1.
POWER_FLOOR = 1e-4
# Halvings of the blend factor's interval when a transform must be fitted into the budget: 2 ** -12 is far
# finer than any visible difference in strength.
BISECTION_STEPS = 12


def limits(config) -> torch.Tensor:
    """The largest deviation from the identity of each of the 14 parameters (a ``HarmoniseConfig``'s bounds)."""
    return torch.tensor(
        [config.max_log_gain] * 3 + [config.max_mix] * 6 + [config.max_log_gamma, config.max_log_contrast]
        + [config.max_bias] * 3
    )


def squash(raw: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """Unbounded network outputs (... x 14) -> transform parameters, each strictly inside +- its bound."""
    return torch.tanh(raw) * bounds.to(raw.device, raw.dtype)


def unsquash(params: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """The raw outputs ``squash`` maps to ``params`` (which must lie strictly inside the bounds)."""
    ratio = params / bounds.to(params.device, params.dtype)
    if bool((ratio.abs() >= 1).any()):
        raise ValueError("params lie outside the bounds; no raw output maps to them")
    return torch.atanh(ratio)


def identity(*batch: int) -> torch.Tensor:
    """Parameters of the identity transform, shape (*batch, 14)."""
    return torch.zeros(*batch, PARAMS)


def matrix(params: torch.Tensor) -> torch.Tensor:
    """The linear-light colour matrix M (... x 3 x 3) of ``params`` (... x 14)."""
    eye = torch.eye(3, dtype=params.dtype, device=params.device)
    mix = eye.expand(*params.shape[:-1], 3, 3).clone()
    for k, (row, column) in enumerate(OFF_DIAGONAL):
        mix[..., row, column] = params[..., MIX][..., k]
    return torch.exp(params[..., LOG_GAIN])[..., :, None] * mix


def _mapped(rgb: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """The family's formula (module docstring) without the exactness correction of ``apply_transform``."""
    def per_pixel(values: torch.Tensor) -> torch.Tensor:
        # ... x k -> ... x k x 1 x 1: one value per image, broadcast over its pixels.
        return values[..., None, None]

    contrast = per_pixel(torch.exp(params[..., LOG_CONTRAST : LOG_CONTRAST + 1]))
    gamma = per_pixel(torch.exp(params[..., LOG_GAMMA : LOG_GAMMA + 1]))
    u = (0.5 + contrast * (rgb - 0.5) + per_pixel(params[..., BIAS])).clamp(POWER_FLOOR, 1.0)
    linear = srgb_to_linear(u.pow(gamma))
    m = matrix(params)
    # Written out rather than an einsum: the same arithmetic for every pixel whatever the tensor's shape, so
    # a colour maps to the same value alone or in a large image.
    r, g, b = linear.unbind(-3)
    mixed = torch.stack(
        [per_pixel(m[..., i, 0]) * r + per_pixel(m[..., i, 1]) * g + per_pixel(m[..., i, 2]) * b for i in range(3)],
        dim=-3,
    )
    return linear_to_srgb(mixed)


def apply_transform(rgb: torch.Tensor, params: torch.Tensor, *, exact: bool = True) -> torch.Tensor:
    """``rgb`` (sRGB floats in [0, 1], ... x 3 x H x W) mapped by the transform ``params`` (... x 14, the same
    leading dims, or none for one transform of every image); result clipped to [0, 1].

    The result is ``rgb + (f(rgb; params) - f(rgb; identity))``: the sRGB <-> linear round trip of the formula
    is exact only up to float rounding, and subtracting the identity's own round trip makes the identity
    parameters leave every pixel exactly as it was (a harmonised product that needs no change must not move by
    even one level). Training passes ``exact=False`` and skips that correction (half the cost; the two differ by
    float rounding, ~1e-7). Differentiable in ``rgb`` and ``params``."""
    if rgb.dim() < 3 or rgb.shape[-3] != 3:
        raise ValueError(f"rgb must be ... x 3 x H x W, got {tuple(rgb.shape)}")
    if params.shape[-1] != PARAMS:
        raise ValueError(f"params must be ... x {PARAMS}, got {tuple(params.shape)}")
    params = params.to(rgb.device, rgb.dtype)
    if not exact:
        return _mapped(rgb, params)
    change = _mapped(rgb, params) - _mapped(rgb, torch.zeros_like(params))
    return (rgb + change).clamp(0.0, 1.0)


def recolour(composite: torch.Tensor, alpha: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """``composite`` (... x 3 x H x W) with the transform blended in by ``alpha`` (... x 1 x H x W or ... x H x W,
    [0, 1]): the product changes, pixels with alpha 0 (the backdrop) stay exactly as they were."""
    if alpha.dim() == composite.dim() - 1:
        alpha = alpha.unsqueeze(-3)
    changed = apply_transform(composite, params)
    return torch.where(alpha > 0, alpha * changed + (1 - alpha) * composite, composite)


def delta_e(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """CIE76 colour difference (Euclidean in CIELAB, D65) of two sRGB tensors ... x 3 x H x W -> ... x H x W."""
    return (srgb_to_lab(a) - srgb_to_lab(b)).pow(2).sum(dim=-3).sqrt()


def bounded(
    colours: torch.Tensor,
    params: torch.Tensor,
    max_delta_e: float,
    *,
    checked: torch.Tensor | None = None,
    steps: int = BISECTION_STEPS,
    eight_bit: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The transform ``params`` (14) fitted into the ΔE budget on ``colours`` (3 x K x 1: the product's colours).

    Returns (mapped colours, the parameters used, strength t). The parameters used are ``t * params``: every
    part of the transform scaled toward the identity together (a weaker exposure change, a weaker cast ...,
    not a cross-fade of two images), t the largest value in [0, 1] found by bisection for which no colour
    where ``checked`` (K bools, default all) changes by more than ``max_delta_e`` (CIE76). By construction:
    the mapped colours returned are the very ones whose ΔE was verified, and t = 0 (the identity, ΔE 0) is
    the fallback, so the budget holds whether or not ΔE grows monotonically with t. ``math.inf`` turns the
    budget off (t = 1). The colours where ``eight_bit`` (K bools) are mapped to the nearest 8-bit level before
    they are checked and returned: an 8-bit colour stays 8-bit, so a composite's own rounding to 8 bits cannot
    push an opaque pixel of an 8-bit photo past the budget (it rounds a value that already is a level)."""
    if not max_delta_e >= 0:
        raise ValueError(f"max_delta_e must be >= 0, got {max_delta_e!r}")
    if checked is None:
        checked = torch.ones(colours.shape[-2], dtype=torch.bool, device=colours.device)

    Subset = tuple[torch.Tensor, torch.Tensor]  # (colours 3 x k x 1, which of them are 8-bit: k bools)

    def attempt(subset: Subset, watched: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(mapped colours of ``subset`` at strength t, their ΔE where ``watched``)."""
        originals, levelled = subset
        mapped = apply_transform(originals, params * t)
        mapped = torch.where(levelled[None, :, None], mapped.mul(255.0).round().div(255.0), mapped)
        return mapped, delta_e(mapped, originals)[..., 0][watched]

    def fits(change: torch.Tensor) -> bool:
        return change.numel() == 0 or float(change.max()) <= max_delta_e

    def search(subset: Subset, watched: torch.Tensor) -> float:
        """The largest verified strength on ``subset``. Invariant: ``low`` fits, ``high`` broke the budget."""
        low, high = 0.0, 1.0
        for _ in range(steps):
            middle = (low + high) / 2
            if fits(attempt(subset, watched, middle)[1]):
                low = middle
            else:
                high = middle
        return low

    levelled = torch.zeros_like(checked) if eight_bit is None else eight_bit
    everything = (colours, levelled)
    mapped, change = attempt(everything, checked, 1.0)
    if fits(change) or math.isinf(max_delta_e):
        return mapped, params.clone(), 1.0
    # The search runs on the colours that break the budget at full strength (a colour's change grows about
    # linearly with t, so they are the ones that bind), usually a small share of a photo's colours; the
    # strength it finds is then verified on every colour, and only if that fails is the search repeated on
    # all of them.
    full = torch.zeros(colours.shape[-2], dtype=torch.bool, device=colours.device)
    full[checked] = change > max_delta_e
    binding = (colours[:, full], levelled[full])
    strength = search(binding, torch.ones(int(full.sum()), dtype=torch.bool, device=colours.device))
    mapped, change = attempt(everything, checked, strength)
    if not fits(change):
        strength = search(everything, checked)
        mapped, change = attempt(everything, checked, strength)
    if not fits(change):
        # Only reachable if the transform's arithmetic were not deterministic: fall back to the identity.
        return colours.clone(), params * 0.0, 0.0
    return mapped, params * strength, strength


def unique_colours(pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the distinct colours 3 x K, the index of each of the P pixels' colour among them) of 3 x P ``pixels``.

    A global transform is a function of the colour, so it and its ΔE need computing once per distinct colour:
    a photo of millions of pixels has far fewer colours, which makes the budget's bisection cheap. 8-bit
    colours (the usual case: values k / 255) are found through one integer key per pixel, others by rows."""
    levels = pixels.mul(255.0).round()
    if torch.equal(levels / 255.0, pixels):
        codes = levels.long()
        keys = (codes[0] << 16) | (codes[1] << 8) | codes[2]
        distinct, inverse = torch.unique(keys, return_inverse=True)
        colours = torch.stack(((distinct >> 16) & 255, (distinct >> 8) & 255, distinct & 255)).to(pixels.dtype) / 255.0
        return colours, inverse
    distinct, inverse = torch.unique(pixels.T, dim=0, return_inverse=True)
    return distinct.T.contiguous(), inverse


def apply_within_budget(
    product: torch.Tensor, alpha: torch.Tensor, params: torch.Tensor, max_delta_e: float
) -> tuple[torch.Tensor, dict]:
    """The product (3 x H x W sRGB in [0, 1], straight colour) mapped by ``params`` (14) within the ΔE budget.

    Pixels with alpha > 0 are mapped (elsewhere the product is returned as it was: nothing shows there); those
    with alpha > 0.5 (the product proper, not its soft edge) are held to ``max_delta_e`` (``bounded``). 8-bit
    colours (every channel k / 255) come back 8-bit, so the budget also holds after an opaque pixel is saved
    in an 8-bit composite. Report:
    "applied" (whether any pixel changed), "strength" (the blend factor t), "max_delta_e" and "mean_delta_e"
    (the CIE76 change of the pixels with alpha > 0.5 as applied), "budget" and "params" (the predicted
    parameters, before the blend)."""
    report = {"applied": False, "strength": 1.0, "max_delta_e": 0.0, "mean_delta_e": 0.0,
              "budget": float(max_delta_e), "params": [float(v) for v in params]}
    inside = alpha > 0
    new = product.clone()
    if not bool(inside.any()):
        return new, report
    colours, inverse = unique_colours(product[:, inside])
    solid = alpha[inside] > 0.5
    checked = torch.zeros(colours.shape[1], dtype=torch.bool)
    checked[inverse[solid]] = True
    eight_bit = (colours.mul(255.0).round().div(255.0) == colours).all(dim=0)
    mapped, _, strength = bounded(colours[:, :, None], params, max_delta_e, checked=checked, eight_bit=eight_bit)
    new[:, inside] = mapped[:, :, 0][:, inverse]
    change = delta_e(mapped, colours[:, :, None])[:, 0][inverse[solid]]
    if change.numel():
        report.update(max_delta_e=float(change.max()), mean_delta_e=float(change.mean()))
    report.update(strength=strength, applied=bool((mapped != colours[:, :, None]).any()))
    return new, report


def check_inputs(product: torch.Tensor, alpha: torch.Tensor, backdrop: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(product, alpha as H x W, backdrop) as float CPU tensors; ``ValueError`` when the shapes do not fit."""
    if product.dim() != 3 or product.shape[0] != 3:
        raise ValueError(f"product_rgb must be 3 x H x W, got {tuple(product.shape)}")
    if alpha.dim() == 3 and alpha.shape[0] == 1:
        alpha = alpha[0]
    if tuple(alpha.shape) != tuple(product.shape[1:]) or tuple(backdrop.shape) != tuple(product.shape):
        raise ValueError(
            f"alpha ({tuple(alpha.shape)}) must be H x W and backdrop_rgb ({tuple(backdrop.shape)}) 3 x H x W "
            f"for a product of {tuple(product.shape)}"
        )
    return product.detach().float().cpu(), alpha.detach().float().cpu().clamp(0.0, 1.0), backdrop.detach().float().cpu()
