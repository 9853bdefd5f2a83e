"""The restoration loss, as pure functions of tensors (images in [0, 1]).

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

import torch

from .metrics import ssim

CHARBONNIER_EPS = 1e-3


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
