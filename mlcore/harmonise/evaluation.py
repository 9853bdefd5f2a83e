"""The restoration benchmark of harmonisation: how well a method puts a product back in harmony with its scene.

Each held-out photo gets one seeded random perturbation (``perturb``, at least one step drawn, so no case is
trivially unchanged) and its product mask (``data.photo_and_alpha``), in one of two modes:

* "product" (the issue's benchmark, as training): the product is perturbed, the backdrop is the photo as shot;
  the target is the photo as shot.
* "scene": the whole photo is relit by the perturbation, and the product as shot is put back on the relit
  backdrop; the target is the relit photo's product. This is the use case (a studio product on a scene of
  another light), and it tells a model that has learnt the relation of product and scene from one that has
  learnt the catalogue's usual look, which "product" alone rewards as well.

A method restores the product from (product, alpha, backdrop): ``Harmoniser``'s and ``classical``'s signature.
Scores over the product pixels (alpha > 0.5) of the restored product against the target: PSNR (dB, sRGB in
[0, 1]) and mean CIE76 ΔE, each averaged over the photos.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from PIL import Image

from . import classical
from .data import photo_and_alpha
from .perturb import Perturbation, apply_perturbation, random_perturbations
from .transform import delta_e

Method = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
# Photos are scored at this long side: harmonisation is global, full resolution adds time, not information.
SIDE = 256


@dataclass
class Case:
    """One benchmark photo: the target (3 x H x W), the alpha (H x W), the product to restore and the backdrop
    it sits on (3 x H x W each; the product in straight colour, i.e. a whole photo), the perturbation and the
    mask's source."""

    target: torch.Tensor
    alpha: torch.Tensor
    product: torch.Tensor
    backdrop: torch.Tensor
    perturbation: Perturbation
    source: str


def _draw(seed: int) -> Perturbation:
    """The seeded perturbation of one photo; redrawn (same stream) until at least one step changes something."""
    rng = torch.Generator().manual_seed(seed)
    while True:
        p = random_perturbations(1, rng)
        if any(float(getattr(p, name).abs().max()) > 0 for name in vars(p)):
            return p


MODES = ("product", "scene")


def make_cases(photos: Sequence[Image.Image], *, seed: int = 0, side: int = SIDE, mode: str = "product") -> list[Case]:
    """One ``Case`` per photo (photo i perturbed with seed ``seed + i``), photos shrunk to ``side`` long side."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    cases = []
    for i, photo in enumerate(photos):
        scale = min(1.0, side / max(photo.size))
        if scale < 1.0:
            photo = photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))), Image.Resampling.BOX)
        original, alpha, source = photo_and_alpha(photo)
        p = _draw(seed + i)
        perturbed = apply_perturbation(original[None], p)[0]
        if mode == "product":
            cases.append(Case(original, alpha, perturbed, original, p, source))
        else:
            cases.append(Case(perturbed, alpha, original, perturbed, p, source))
    return cases


def scores(restored: torch.Tensor, case: Case) -> tuple[float, float]:
    """(PSNR in dB, mean CIE76) of the restored product against the target over alpha > 0.5."""
    solid = case.alpha > 0.5
    if not bool(solid.any()):
        solid = case.alpha > 0
    mse = float((restored - case.target).pow(2)[:, solid].mean())
    psnr = 10 * math.log10(1.0 / max(mse, 1e-10))
    return psnr, float(delta_e(restored, case.target)[solid].mean())


def baselines() -> dict[str, Method]:
    """The methods every run compares: no change, Reinhard transfer, histogram matching."""
    return {
        "none": lambda product, alpha, backdrop: product.clone(),
        "reinhard": classical.reinhard,
        "histogram": classical.histogram_match,
    }


def model_method(harmoniser, max_delta_e: float = math.inf) -> Method:
    """A ``Harmoniser`` as a method, with the given ΔE budget (default none: restoration is what is measured)."""
    return lambda product, alpha, backdrop: harmoniser(product, alpha, backdrop, max_delta_e=max_delta_e)[0]


def evaluate(cases: Sequence[Case], methods: dict[str, Method]) -> dict:
    """{"photos": n, "methods": {name: {"psnr_db", "delta_e"}}, "mask_sources": {source: count}}: the means over
    the cases of each method's scores."""
    totals = {name: [0.0, 0.0] for name in methods}
    for case in cases:
        for name, method in methods.items():
            psnr, de = scores(method(case.product, case.alpha, case.backdrop), case)
            totals[name][0] += psnr
            totals[name][1] += de
    n = max(1, len(cases))
    sources: dict[str, int] = {}
    for case in cases:
        sources[case.source] = sources.get(case.source, 0) + 1
    return {
        "photos": len(cases),
        "methods": {name: {"psnr_db": p / n, "delta_e": d / n} for name, (p, d) in totals.items()},
        "mask_sources": sources,
    }
