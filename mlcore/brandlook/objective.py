"""The brand-look training objective as pure functions of tensors, and ``BrandLookObjective``, the
self-supervised batches the one ``Trainer`` trains on.

    loss = |out - target|_1 (mean over pixels and channels, sRGB in [0, 1])
         + smooth_weight * curvature(LUT) + monotone_weight * decrease(LUT) [+ stats_weight * W1(out, look)]

Why the regularisers:
* curvature: a catalogue fills a thin part of the colour cube, so most table nodes never see a training pixel
  and would keep whatever noise the shared residuals put there; a colour the shop's photos never had would
  then map erratically at inference. Penalising squared second differences along each axis fills unseen
  nodes with the smooth (affine) continuation of the seen ones and prevents bumps that show as banding in
  smooth gradients (backdrop sweeps). Second, not first, differences: white balance, exposure in the table's
  domain, saturation and hue rotation are (near) affine in RGB and cost nothing, so the penalty does not pull
  grades towards "no change".
* decrease: an output channel that falls while its own input channel rises inverts local contrast in that
  channel, which turns edges into false contours or makes them vanish (solarisation); a grade never does it.
  Penalising the squared negative parts of the differences along the table's own axis keeps every channel's
  curve non-decreasing, which is what keeps the luminance edges (the benchmark's edge SSIM).
Both are computed on each photo's mixed table (the one actually applied), not on the basis tables.

The stats term is the benchmark's own distance (W1 of the L*, a*, b* marginals to the target look, / 100). The
reconstruction alone is ambiguous when the look comes from other products (their colours are not this
photo's) and its best answer is a cautious, shrunk grade; the stats term asks for the look to be reached,
within what one smooth monotone table per photo can do (so never at the cost of edges).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..cielab import srgb_to_lab
from ..training.objective import Objective
from .config import BrandLookConfig
from .distance import quantile_distance
from .grading import BRAND, SHOOTING, Grade, apply_grade, random_grades
from .look import VECTOR_SCALE, lab_statistics, reference_noise, vector
from .lut import apply_lut
from .networks import AdaptiveLUT

# h is the identity this often: most photos the model will see are the shop's unedited originals.
IDENTITY_INPUT_P = 0.5
REFERENCE_STRIDE = 2


def reconstruction(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute sRGB error: robust to the few clipped pixels no table can reproduce."""
    return (out - target).abs().mean()


def lut_curvature(luts: torch.Tensor) -> torch.Tensor:
    """Mean squared second difference of N x 3 x M x M x M tables along the three input axes, in units of the
    node spacing (so it does not grow with M)."""
    m = luts.shape[-1]
    total = luts.new_zeros(())
    for dim in (2, 3, 4):
        second = luts.diff(n=2, dim=dim) * (m - 1) ** 2
        total = total + second.pow(2).mean()
    # Scaled so that a visible wiggle (second difference 1 per node) costs about as much as a 1% colour error.
    return total / 3.0 * 1e-4


def lut_decrease(luts: torch.Tensor) -> torch.Tensor:
    """Mean squared negative slope of each output channel along its own input axis (R along r, ...), in units
    of the node spacing; 0 for every table whose channel curves are all non-decreasing."""
    m = luts.shape[-1]
    total = luts.new_zeros(())
    # lut[:, c, b, g, r]: red varies along dim 4, green along 3, blue along 2.
    for channel, dim in ((0, 4), (1, 3), (2, 2)):
        slope = luts[:, channel].diff(dim=dim - 1) * (m - 1)
        total = total + torch.relu(-slope).pow(2).mean()
    return total / 3.0


def stats_term(out_quantiles: torch.Tensor, look_quantiles: torch.Tensor) -> torch.Tensor:
    """The benchmark's colour-statistics distance (``distance.quantile_distance``), batch mean, / 100."""
    return quantile_distance(out_quantiles, look_quantiles).mean() / VECTOR_SCALE


def brand_look_terms(
    out: torch.Tensor,
    target: torch.Tensor,
    luts: torch.Tensor,
    *,
    smooth_weight: float,
    monotone_weight: float,
    stats_weight: float = 0.0,
    out_quantiles: torch.Tensor | None = None,
    look_quantiles: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """{"loss", "recon", "smooth", "monotone"[, "stats"]}; "stats" needs both quantile tensors."""
    terms = {
        "recon": reconstruction(out, target),
        "smooth": lut_curvature(luts),
        "monotone": lut_decrease(luts),
    }
    loss = terms["recon"] + smooth_weight * terms["smooth"] + monotone_weight * terms["monotone"]
    if stats_weight > 0:
        if out_quantiles is None or look_quantiles is None:
            raise ValueError("stats_weight > 0 needs out_quantiles and look_quantiles")
        terms["stats"] = stats_term(out_quantiles, look_quantiles)
        loss = loss + stats_weight * terms["stats"]
    return {"loss": loss, **terms}


def photo_statistics(rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    """``look.lab_statistics`` of N x 3 x H x W sRGB floats in [0, 1] (every pixel counts)."""
    return lab_statistics(srgb_to_lab(rgb).flatten(2))


class BrandLookObjective(Objective):
    """A ``BrandLookConfig`` model on uint8 photos N x 3 x S x S (S = ``config.train_size``, N >= 2).

    Each step draws B photos A and, per photo, two random grades (``grading``): g (the "brand grade", drawn
    from the stronger ``grading.BRAND`` distribution) and h (a "shooting condition", ``grading.SHOOTING``,
    identity half of the time). The model sees h(A) and must output g(A), given

    * with probability ``self_look_p``: the look of g(A) itself (the textbook self-supervised task: undo a
      change given the original's statistics; with g = identity it is exactly "map B back to A given A's
      look"), or
    * otherwise: the look of n OTHER photos graded by the same g (n from 1 to ``max_references``). This is the
      inference situation: references show the grade on different products, and the model must carry the
      grade, not the references' product colours, over to the photo (a red dress stays red under a warm grade
      even when the references are blue jeans). Histogram matching cannot make that distinction; a learned
      prior can. The network is told how many references were averaged (``look.reference_noise``; 0 for the
      photo's own look), since a look of many references says more about the grade and less about their
      products.
    """

    CONFIG = BrandLookConfig
    DEFAULTS = {"batch_size": 16, "betas": (0.9, 0.999), "ema_decay": 0.998}
    # The table weights are unbounded; one batch of extreme grades must not throw the tables far off.
    CLIP_NORM = 1.0

    def __init__(
        self, config: BrandLookConfig, images: torch.Tensor, *, device: torch.device, seed: int, batch_size: int,
        lr: float = 1e-3,
    ) -> None:
        super().__init__(config, device=device, seed=seed, batch_size=batch_size)
        size = config.train_size
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"images must be uint8 N x 3 x {size} x {size}, got {images.dtype} {tuple(images.shape)}")
        if len(images) < 2:
            raise ValueError("training needs at least 2 photos (references must differ from the photo)")
        self._build_model(AdaptiveLUT, lr)
        self.images = images.to(self.device)

    @property
    def loss_keys(self) -> tuple[str, ...]:
        return ("loss", "recon", "smooth", "monotone") + (("stats",) if self.config.stats_weight > 0 else ())

    def _pixels(self, index: torch.Tensor) -> torch.Tensor:
        return self.images[index.to(self.device)].float().div_(255.0)

    def sample_batch(self, rng: torch.Generator) -> dict[str, torch.Tensor]:
        """Inputs h(A), targets g(A), own and target look statistics."""
        cfg, b = self.config, self.batch_size
        n = len(self.images)
        index = torch.randint(0, n, (b,), generator=rng)
        grade = random_grades(b, rng, step_p=BRAND[0], scale=BRAND[1])
        shooting = random_grades(b, rng, step_p=SHOOTING[0], scale=SHOOTING[1])
        keep = torch.rand(b, generator=rng) < IDENTITY_INPUT_P
        shooting = Grade(**{
            name: torch.where(keep.view(-1, *([1] * (value.dim() - 1))), torch.zeros_like(value), value)
            for name, value in vars(shooting).items()
        })
        count = int(torch.randint(1, cfg.max_references + 1, (1,), generator=rng))
        # Other photos than A: offsets 1 .. n-1 from A's index.
        references = (index[:, None] + torch.randint(1, n, (b, count), generator=rng)) % n
        self_look = torch.rand(b, generator=rng) < cfg.self_look_p

        photos = self._pixels(index)
        target = apply_grade(photos, grade)
        inputs = apply_grade(photos, shooting)
        # Every other row and column of the references: an unbiased sample of their pixels for the look, at a
        # quarter of the cost (the references are most of a step's grading work).
        ref_pixels = self._pixels(references.flatten())[:, :, ::REFERENCE_STRIDE, ::REFERENCE_STRIDE]
        graded_refs = apply_grade(ref_pixels, grade.repeat_interleave(count))
        with torch.no_grad():
            own = photo_statistics(inputs)
            refs = photo_statistics(graded_refs)
            refs = {key: value.view(b, count, *value.shape[1:]).mean(1) for key, value in refs.items()}
            itself = photo_statistics(target)
            look = {
                key: torch.where(self_look.to(self.device).view(-1, *([1] * (value.dim() - 1))), itself[key], value)
                for key, value in refs.items()
            }
            # A photo's own look describes its very content: as if infinitely many references were averaged.
            noise = torch.where(self_look, 0.0, reference_noise(count)).to(self.device)
        return {"inputs": inputs, "target": target, "own": own, "look": look, "noise": noise}

    def terms(self, batch: dict[str, torch.Tensor], model: nn.Module | None = None) -> dict[str, torch.Tensor]:
        cfg = self.config
        model = self.model if model is None else model
        inputs = batch["inputs"]
        thumb = F.avg_pool2d(inputs, cfg.train_size // cfg.thumb_size)
        luts = model(thumb, vector(batch["own"]), vector(batch["look"]), batch["noise"])
        out = apply_lut(inputs, luts)
        extra = {}
        if cfg.stats_weight > 0:
            extra = {
                "out_quantiles": photo_statistics(out.clamp(0.0, 1.0))["quantiles"],
                "look_quantiles": batch["look"]["quantiles"],
            }
        return brand_look_terms(
            out, batch["target"], luts,
            smooth_weight=cfg.smooth_weight, monotone_weight=cfg.monotone_weight, stats_weight=cfg.stats_weight, **extra,
        )
