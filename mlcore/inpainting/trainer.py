"""Training loop of the inpainting model: random crops of the shop's photos with random holes, EMA,
save/resume (``mlcore.fitting``).

Self-supervised: each step takes random crops of the training photos at their own resolution, in one of the 8
flips/rotations, punches a random mask into each (``masks.random_mask``, small or large with equal odds) and
learns to give the crop back. Every random draw after construction (photo, crop, orientation, mask) comes
from one CPU ``torch.Generator`` whose state is checkpointed, so a resumed run continues exactly as an
uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Sequence
import torch

from ..checkpoint import CheckpointSource
from ..fitting import EMAModelLoop
from ..restoration.degrade import to_float
from ..restoration.trainer import _dihedral, check_photos
from .config import KIND, InpaintConfig
from .masks import MASK_SIZES, random_mask
from .network import InpaintNet
from .objective import loss_terms

LOSS_KEYS = ("loss", "hole", "valid")
HISTORY_KEYS = ("step", *LOSS_KEYS)


class Trainer(EMAModelLoop):
    """Trains an ``InpaintConfig`` model on a shop's photos: uint8 3 x H x W tensors of any sizes (a list), or
    an N x 3 x H x W uint8 tensor, each at least ``crop_size`` on both sides. The EMA copy is what repairs
    (``Inpainter``)."""

    RESUMES = (KIND,)
    CONFIG = InpaintConfig
    HISTORY_KEYS = HISTORY_KEYS

    def __init__(
        self,
        config: InpaintConfig,
        images: Sequence[torch.Tensor] | torch.Tensor,
        labels: None = None,
        *,
        batch_size: int = 8,
        lr: float = 5e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        ema_decay: float = 0.999,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        # EMAModelLoop.__init__ checks for the generators' fixed-size labelled datasets; this trainer takes
        # photos of any size and no labels (``labels`` exists so FitLoop.resume can rebuild it), and sets the
        # same attributes itself.
        self._check_config(config)
        if labels is not None:
            raise ValueError("the inpainting trainer takes no labels")
        self.photos = check_photos(images, config.crop_size)
        self._set_up(config, InpaintNet, batch_size=batch_size, lr=lr, betas=betas, ema_decay=ema_decay, seed=seed, device=device)

    @classmethod
    def resume(
        cls,
        source: CheckpointSource,
        images: Sequence[torch.Tensor] | torch.Tensor,
        labels: None = None,
        *,
        device: str | torch.device = "cpu",
    ) -> Trainer:
        """Rebuild a trainer from ``save``'s checkpoint to continue training on ``images``."""
        return super().resume(source, images, labels, device=device)

    def sample_batch(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(clean crops N x 3 x S x S in [0, 1], masks N x 1 x S x S, 1 = hole), every draw from ``generator``."""
        size = self.config.crop_size
        sizes = sorted(MASK_SIZES)
        crops, masks = [], []
        for index in torch.randint(len(self.photos), (self.batch_size,), generator=generator).tolist():
            photo = self.photos[index]
            top = int(torch.randint(photo.shape[1] - size + 1, (), generator=generator))
            left = int(torch.randint(photo.shape[2] - size + 1, (), generator=generator))
            code = int(torch.randint(8, (), generator=generator))
            crops.append(_dihedral(to_float(photo[:, top : top + size, left : left + size]), code))
            kind = sizes[int(torch.randint(len(sizes), (), generator=generator))]
            masks.append(random_mask(generator, size, size, kind).unsqueeze(0).float())
        return torch.stack(crops), torch.stack(masks)

    def batch_terms(
        self, batch: tuple[torch.Tensor, torch.Tensor], model: torch.nn.Module | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss terms of ``model`` (default: the trained network) on ``batch``."""
        model = self.model if model is None else model
        clean, mask = batch[0].to(self.device), batch[1].to(self.device)
        return loss_terms(
            model(clean, mask), clean, mask,
            hole_weight=self.config.hole_weight, valid_weight=self.config.valid_weight,
        )

    def _train_step(self) -> dict[str, torch.Tensor]:
        return self._optimise(self.batch_terms(self.sample_batch(self.rng)))
