"""The restoration objective: the loss as pure functions of tensors (images in [0, 1]), and
``RestorationObjective``, the self-supervised batches the one ``Trainer`` trains on.

* Charbonnier sqrt((x - y)^2 + eps^2), a smooth L1: L2 regresses to the mean of the plausible clean
  images and smears edges, and restoration networks trained with L1 reach a higher PSNR than with L2 even
  though PSNR is an L2 measure (Zhao et al. 2017, Lim et al. 2017 (EDSR)); the smoothing at eps keeps the
  gradient finite where a pixel is already right.
* A small 1 - SSIM term: SSIM compares local means, contrast and structure, so it rewards the textures
  that a pixel loss is content to blur; its weight is kept small because PSNR is what the shop's photos are
  measured by first.
* The tone network's own term: the mean absolute error of the tone-corrected preview against the clean
  photo's preview. It weighs an error in the curve by what it does to the photo, and where the exact
  inverse curve is not the best one (highlights clipped by over-exposure) it finds the best compromise.
  Absolute rather than squared because many real photos are dim or warm as they were taken, so a photo's
  tone is often ambiguous: the squared error asks for the mean of the plausible curves, a partial
  correction applied to every such photo (tone network alone on 20 validation photos, 1,000 steps of 64
  previews: -2.1 dB on average on correctly exposed photos, -17.6 dB on one dim photo of a white hat),
  while the absolute error asks for a median-like answer that leaves a photo alone unless the network is
  fairly sure it was degraded (700 steps: -0.0 dB on the same photos; but under-exposed photos recover
  less, 23.9 dB against 34.0 dB). A shop tool should not wreck a good photo. This is the only gradient the tone network gets (the model detaches
  the curve from the pixel terms), and Adam scales each parameter's steps by its own gradients, so
  ``tone_weight`` matters only in the reported total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import nn

from ..photos import check_photos, random_crop, to_float
from ..training.objective import Objective
from .config import RestorationConfig
from .degrade import Degradation, random_degradation
from .metrics import ssim
from .networks import RestorationModel, apply_tone, preview

CHARBONNIER_EPS = 1e-3
# Extra previews per step for the tone network alone (``tone_batch``): a 64 x 64 preview costs ~1/100 of a
# crop through the local network, and a whole photo's tone is one sample, so it needs many more photos per
# step than the local network gets crops.
TONE_BATCH = 64


def charbonnier(restored: torch.Tensor, target: torch.Tensor, eps: float = CHARBONNIER_EPS) -> torch.Tensor:
    """Mean over all values of sqrt((restored - target)^2 + eps^2)."""
    return torch.sqrt((restored - target).pow(2) + eps * eps).mean()


def loss_terms(
    restored: torch.Tensor,
    target: torch.Tensor,
    toned_previews: torch.Tensor,
    clean_previews: torch.Tensor,
    *,
    ssim_weight: float,
    tone_weight: float,
) -> dict[str, torch.Tensor]:
    """{"loss": pixel + ssim_weight * (1 - ssim) + tone_weight * tone, and each term}, batch means.

    ``toned_previews`` are degraded previews after the predicted tone curve, ``clean_previews`` the clean ones."""
    pixel = charbonnier(restored, target)
    structure = 1.0 - ssim(restored, target).mean()
    tone_error = (toned_previews - clean_previews).abs().mean()
    loss = pixel + ssim_weight * structure + tone_weight * tone_error
    return {"loss": loss, "pixel": pixel, "ssim": structure, "tone": tone_error}


@dataclass
class Batch:
    """On the CPU: network inputs and clean targets (N x 3 x S x S) of the local network; degraded and clean
    previews (N + M) x 3 x 64 x 64 of the tone network, the first N of the crops' own photos."""

    inputs: torch.Tensor
    targets: torch.Tensor
    previews: torch.Tensor
    clean_previews: torch.Tensor


class RestorationObjective(Objective):
    """A ``RestorationConfig`` model on a shop's photos: uint8 3 x H x W tensors of any sizes (a list), or an
    N x 3 x H x W uint8 tensor. The EMA copy is what restores (``Restorer``).

    Self-supervised: each step takes random crops of the training photos at their own resolution, degrades each
    with a random chain (``degrade.random_degradation``) and learns to give the crop back. ``ToneNet`` sees the
    whole photo's preview degraded by the same tone, noise and JPEG (the steps that shift a photo's mean levels;
    noise clipped at white darkens a white backdrop, for one), and ``tone_batch`` previews of other photos with
    degradations of their own."""

    CONFIG = RestorationConfig
    DEFAULTS = {"batch_size": 8, "betas": (0.9, 0.99), "ema_decay": 0.999}
    LOSS_KEYS = ("loss", "pixel", "ssim", "tone")

    def __init__(
        self, config: RestorationConfig, photos: Sequence[torch.Tensor] | torch.Tensor, *,
        device: torch.device, seed: int, batch_size: int, lr: float = 1e-3, tone_batch: int = TONE_BATCH,
    ) -> None:
        super().__init__(config, device=device, seed=seed, batch_size=batch_size)
        if isinstance(tone_batch, bool) or not isinstance(tone_batch, int) or tone_batch < 0:
            raise ValueError(f"tone_batch must be an int >= 0, got {tone_batch!r}")
        self.photos = check_photos(photos, config.crop_size)
        self.tone_batch = tone_batch
        self._build_model(RestorationModel, lr)
        # One preview per photo, made once: the tone network's view of the whole photo.
        self.previews = [preview(to_float(p).unsqueeze(0))[0] for p in self.photos]

    def options(self) -> dict[str, Any]:
        return {**super().options(), "tone_batch": self.tone_batch}

    def sample_batch(self, rng: torch.Generator) -> Batch:
        """``batch_size`` degraded random crops and ``batch_size + tone_batch`` degraded previews."""
        kinds = tuple(self.config.degradations)
        inputs, targets, previews, clean_previews = [], [], [], []
        for index in torch.randint(len(self.photos), (self.batch_size,), generator=rng).tolist():
            clean = random_crop(self.photos[index], self.config.crop_size, rng)
            degradation = random_degradation(rng, kinds)
            inputs.append(degradation.network_input(degradation.apply(clean, rng)))
            targets.append(clean)
            previews.append(self._degraded_preview(index, degradation, rng))
            clean_previews.append(self.previews[index])
        for index in torch.randint(len(self.photos), (self.tone_batch,), generator=rng).tolist():
            degradation = random_degradation(rng, kinds)
            previews.append(self._degraded_preview(index, degradation, rng))
            clean_previews.append(self.previews[index])
        return Batch(torch.stack(inputs), torch.stack(targets), torch.stack(previews), torch.stack(clean_previews))

    def _degraded_preview(self, index: int, degradation: Degradation, rng: torch.Generator) -> torch.Tensor:
        # Blur and enlargement keep a photo's mean levels, so a preview leaves them out.
        return replace(degradation, blur_sigma=0.0, scale=1).apply(self.previews[index], rng)

    def terms(self, batch: Batch, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
        model = self.model if model is None else model
        previews = batch.previews.to(self.device)
        restored, params = model(batch.inputs.to(self.device), previews)
        return loss_terms(
            restored, batch.targets.to(self.device), apply_tone(previews, params), batch.clean_previews.to(self.device),
            ssim_weight=self.config.ssim_weight, tone_weight=self.config.tone_weight,
        )
