"""Training loop of the restoration model: random crops of the shop's photos, degraded on the fly, EMA,
save/resume (``mlcore.fitting``).

Self-supervised: each step takes random crops of the training photos at their own resolution, degrades each
with a random chain (``degrade.random_degradation``) and learns to give the crop back. ``ToneNet`` sees the
whole photo's preview degraded by the same tone, noise and JPEG (the steps that shift a photo's mean levels;
noise clipped at white darkens a white backdrop, for one), and ``tone_batch`` previews of other photos with
degradations of their own. Every random draw after construction (photo,
crop, flips, degradation, noise) comes from one CPU ``torch.Generator`` whose state is checkpointed, so a
resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
import torch

from ..checkpoint import CheckpointSource
from ..fitting import EMAModelLoop
from .config import KIND, RestorationConfig
from .degrade import Degradation, random_degradation, to_float
from .network import RestorationModel, apply_tone, preview
from .objective import loss_terms

LOSS_KEYS = ("loss", "pixel", "ssim", "tone")
# Extra previews per step for the tone network alone (``tone_batch``): a 64 x 64 preview costs ~1/100 of a
# crop through the local network, and a whole photo's tone is one sample, so it needs many more photos per
# step than the local network gets crops.
TONE_BATCH = 64
HISTORY_KEYS = ("step", *LOSS_KEYS)


@dataclass
class Batch:
    """On the CPU: network inputs and clean targets (N x 3 x S x S) of the local network; degraded and clean
    previews (N + M) x 3 x 64 x 64 of the tone network, the first N of the crops' own photos."""

    inputs: torch.Tensor
    targets: torch.Tensor
    previews: torch.Tensor
    clean_previews: torch.Tensor


def check_photos(images: Sequence[torch.Tensor] | torch.Tensor, crop_size: int) -> list[torch.Tensor]:
    """The photos as a list of uint8 3 x H x W tensors, each at least ``crop_size`` on both sides, else
    ``ValueError`` naming the first one that is not."""
    photos = list(images.unbind(0)) if isinstance(images, torch.Tensor) and images.dim() == 4 else list(images)
    if not photos:
        raise ValueError("cannot train on an empty dataset")
    for i, photo in enumerate(photos):
        if not isinstance(photo, torch.Tensor) or photo.dtype != torch.uint8 or photo.dim() != 3 or photo.shape[0] != 3:
            shape = tuple(photo.shape) if isinstance(photo, torch.Tensor) else type(photo).__name__
            raise ValueError(f"photo {i} must be a uint8 3 x H x W tensor, got {shape}")
        if min(photo.shape[1:]) < crop_size:
            raise ValueError(
                f"photo {i} is {photo.shape[2]} x {photo.shape[1]}; training crops are {crop_size} px, so every "
                f"photo must be at least {crop_size} x {crop_size}"
            )
    return [photo.cpu().contiguous() for photo in photos]


def _dihedral(image: torch.Tensor, code: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a square crop: restoration is the same task in every orientation."""
    if code & 1:
        image = image.flip(-1)
    if code & 2:
        image = image.flip(-2)
    if code & 4:
        image = image.transpose(-1, -2)
    return image


class Trainer(EMAModelLoop):
    """Trains a ``RestorationConfig`` model on a shop's photos: uint8 3 x H x W tensors of any sizes (a list),
    or an N x 3 x H x W uint8 tensor. The EMA copy is what restores (``Restorer``)."""

    RESUMES = (KIND,)
    CONFIG = RestorationConfig
    HISTORY_KEYS = HISTORY_KEYS

    def __init__(
        self,
        config: RestorationConfig,
        images: Sequence[torch.Tensor] | torch.Tensor,
        labels: None = None,
        *,
        batch_size: int = 8,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.99),
        ema_decay: float = 0.999,
        tone_batch: int = TONE_BATCH,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        # EMAModelLoop.__init__ checks for the generators' fixed-size labelled datasets; this trainer takes
        # photos of any size and no labels (``labels`` exists so FitLoop.resume can rebuild it), and sets the
        # same attributes itself.
        self._check_config(config)
        if labels is not None:
            raise ValueError("the restoration trainer takes no labels")
        if isinstance(tone_batch, bool) or not isinstance(tone_batch, int) or tone_batch < 0:
            raise ValueError(f"tone_batch must be an int >= 0, got {tone_batch!r}")
        self.photos = check_photos(images, config.crop_size)
        self._set_up(config, RestorationModel, batch_size=batch_size, lr=lr, betas=betas, ema_decay=ema_decay, seed=seed, device=device)
        self.tone_batch = tone_batch
        # One preview per photo, made once: the tone network's view of the whole photo.
        self.previews = [preview(to_float(p).unsqueeze(0))[0] for p in self.photos]

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

    def sample_batch(self, generator: torch.Generator) -> Batch:
        """``batch_size`` degraded random crops and ``batch_size + tone_batch`` degraded previews, every draw
        from ``generator``."""
        size = self.config.crop_size
        kinds = tuple(self.config.degradations)
        inputs, targets, previews, clean_previews = [], [], [], []
        for index in torch.randint(len(self.photos), (self.batch_size,), generator=generator).tolist():
            photo = self.photos[index]
            top = int(torch.randint(photo.shape[1] - size + 1, (), generator=generator))
            left = int(torch.randint(photo.shape[2] - size + 1, (), generator=generator))
            code = int(torch.randint(8, (), generator=generator))
            clean = _dihedral(to_float(photo[:, top : top + size, left : left + size]), code)
            degradation = random_degradation(generator, kinds)
            inputs.append(degradation.network_input(degradation.apply(clean, generator)))
            targets.append(clean)
            previews.append(self._degraded_preview(index, degradation, generator))
            clean_previews.append(self.previews[index])
        for index in torch.randint(len(self.photos), (self.tone_batch,), generator=generator).tolist():
            degradation = random_degradation(generator, kinds)
            previews.append(self._degraded_preview(index, degradation, generator))
            clean_previews.append(self.previews[index])
        return Batch(torch.stack(inputs), torch.stack(targets), torch.stack(previews), torch.stack(clean_previews))

    def _degraded_preview(self, index: int, degradation: Degradation, generator: torch.Generator) -> torch.Tensor:
        # Blur and enlargement keep a photo's mean levels, so a preview leaves them out.
        return replace(degradation, blur_sigma=0.0, scale=1).apply(self.previews[index], generator)

    def batch_terms(self, batch: Batch, model: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
        """Loss terms of ``model`` (default: the trained network) on ``batch``."""
        model = self.model if model is None else model
        dev = self.device
        previews = batch.previews.to(dev)
        restored, params = model(batch.inputs.to(dev), previews)
        return loss_terms(
            restored, batch.targets.to(dev), apply_tone(previews, params), batch.clean_previews.to(dev),
            ssim_weight=self.config.ssim_weight, tone_weight=self.config.tone_weight,
        )

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "tone_batch": self.tone_batch}

    def _train_step(self) -> dict[str, torch.Tensor]:
        return self._optimise(self.batch_terms(self.sample_batch(self.rng)))
