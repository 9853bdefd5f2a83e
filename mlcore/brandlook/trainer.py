"""Training loop of the brand-look model: self-supervised on the shop's own photos, EMA, save/resume.

Each step draws B photos A and, per photo, two random grades (``grading``): g (the "brand grade", drawn from
the stronger ``grading.BRAND`` distribution) and h (a "shooting condition", ``grading.SHOOTING``, identity half
of the time). The model sees h(A) and must output g(A), given

* with probability ``self_look_p``: the look of g(A) itself (the textbook self-supervised task: undo a change
  given the original's statistics; with g = identity it is exactly "map B back to A given A's look"), or
* otherwise: the look of n OTHER photos graded by the same g (n from 1 to ``max_references``). This is the
  inference situation: references show the grade on different products, and the model must carry the grade,
  not the references' product colours, over to the photo (a red dress stays red under a warm grade even when
  the references are blue jeans). Histogram matching cannot make that distinction; a learned prior can.
  The network is told how many references were averaged (``look.reference_noise``; 0 for the photo's own
  look), since a look of many references says more about the grade and less about their products.

Every random draw after construction comes from one CPU ``torch.Generator`` whose state is checkpointed, so a
resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..checkpoint import CheckpointSource
from ..fitting import EMAModelLoop
from ..cielab import srgb_to_lab
from .config import KIND, BrandLookConfig
from .grading import BRAND, SHOOTING, Grade, apply_grade, random_grades
from .look import lab_statistics, reference_noise, vector
from .lut import apply_lut
from .networks import AdaptiveLUT
from .objectives import brand_look_terms

HISTORY_KEYS = ("step", "loss", "recon", "smooth", "monotone")
# h is the identity this often: most photos the model will see are the shop's unedited originals.
IDENTITY_INPUT_P = 0.5
REFERENCE_STRIDE = 2
GRAD_CLIP = 1.0


def photo_statistics(rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    """``look.lab_statistics`` of N x 3 x H x W sRGB floats in [0, 1] (every pixel counts)."""
    return lab_statistics(srgb_to_lab(rgb).flatten(2))


class Trainer(EMAModelLoop):
    """Trains a ``BrandLookConfig`` model on uint8 photos N x 3 x S x S (S = ``config.train_size``, N >= 2).

    ``labels`` are accepted for the common trainer interface and ignored: a look is not a category."""

    RESUMES = (KIND,)
    CONFIG = BrandLookConfig
    HISTORY_KEYS = HISTORY_KEYS

    def __init__(
        self,
        config: BrandLookConfig,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        batch_size: int = 16,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        ema_decay: float = 0.998,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        self._check_config(config)
        size = config.train_size
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"images must be uint8 N x 3 x {size} x {size}, got {images.dtype} {tuple(images.shape)}")
        if len(images) < 2:
            raise ValueError("training needs at least 2 photos (references must differ from the photo)")
        self._set_up(
            config, AdaptiveLUT, batch_size=batch_size, lr=lr, betas=betas, ema_decay=ema_decay, seed=seed, device=device,
            history_keys=HISTORY_KEYS + (("stats",) if config.stats_weight > 0 else ()),
        )
        self.images = images.to(self.device)

    @classmethod
    def resume(
        cls, source: CheckpointSource, images: torch.Tensor, labels: torch.Tensor | None = None, *,
        device: str | torch.device = "cpu",
    ) -> Trainer:
        """Rebuild a trainer from ``save``'s checkpoint to continue training on ``images`` (``labels`` ignored)."""
        return super().resume(source, images, labels, device=device)

    def _pixels(self, index: torch.Tensor) -> torch.Tensor:
        return self.images[index.to(self.device)].float().div_(255.0)

    def make_batch(self, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One training batch: inputs h(A), targets g(A), own and target look statistics, drawn from
        ``generator`` (default: the trainer's checkpointed one)."""
        cfg, b = self.config, self.batch_size
        rng = self.rng if generator is None else generator
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

    def terms(self, batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
        """The objective's terms of ``model`` (default: the trained one) on a ``make_batch`` batch."""
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

    def _train_step(self) -> dict[str, torch.Tensor]:
        # The table weights are unbounded; one batch of extreme grades must not throw the tables far off.
        return self._optimise(self.terms(self.make_batch()), clip_norm=GRAD_CLIP)
