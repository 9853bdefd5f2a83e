"""The harmonisation training objective: perturb the product of a real photo, learn to undo it.

    loss = mean over product pixels of (T(composite) - target)^2   ("l2"; or |.| with loss="l1")
           [+ lab_weight * mean CIE76 / 100]

weighted by the alpha, T the transform the network predicts from the composite. The photo as shot is the
label: its product and backdrop were lit by the same light, so whatever was done to the product relative to
its backdrop is what T must undo. Two ways to make the composite (``pairing``):

* "product" (default): the photo (relit as a whole, see below) is the target, and its product is perturbed
  over its untouched backdrop; ``identity_p`` of the products are left as they were, so the network learns
  that a matching product needs no change (a harmoniser that always does something would damage the products
  that already fit). This is the issue's benchmark ("product" mode of ``evaluation``).
* "both": product and backdrop each get their own random light (each kept as shot with probability
  ``as_shot_p``; the same light for both with probability ``identity_p``) and the target is the product under
  the backdrop's light. The composite then no longer tells which side was changed, so the network cannot
  lean on the catalogue's usual look and has to read the light off the backdrop, which is the use case
  ("scene" mode of ``evaluation``). Measured (400 photos, 3,000 steps of 32, 100 test photos): "product"
  +1.15 dB in "product" mode and -0.30 dB in "scene" mode; "both" +0.73 dB and +0.05 dB.

Why squared error: from one composite the perturbation is ambiguous (a dark jacket or a darkened one?).
Absolute error is minimised by the median of the plausible corrections, and for most parts of the transform
that is "no change", so an L1-trained network barely moves (measured, 400 photos at 64 px: +0.5 dB over no
change after 2,000 steps of 16, against +1.5 dB for squared error); squared error is minimised by their mean.

Two augmentations keep the network from memorising a small catalogue (without them the held-out gain peaked
and then fell while the training loss kept falling): the whole photo, product and backdrop together, first
gets a random perturbation of its own (``scene_scale``: still a harmonious photo, under another light, so
absolute colours cannot be learnt by heart), and a random crop of at least ``crop`` of the side, mirrored at
random (new layouts; colour is unaffected).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..cielab import srgb_to_lab
from ..training.objective import Objective
from .config import HarmoniseConfig
from .networks import HarmoniseNet
from .perturb import RANGES, Perturbation, apply_perturbation, random_perturbations
from .transform import apply_transform

# Share of the photos whose scene keeps its own light (the catalogue as shot is what inference sees most).
SCENE_IDENTITY_P = 0.3


def masked_error(out: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor, power: int) -> torch.Tensor:
    """Mean absolute (power 1) or squared (power 2) error of N x 3 x H x W sRGB tensors over the pixels of
    N x 1 x H x W ``alpha`` (weighted); the products of all images count by their area."""
    difference = (out - target).abs() if power == 1 else (out - target).pow(2)
    return (difference * alpha).sum() / (3.0 * alpha.sum()).clamp_min(1e-6)


def masked_delta_e(out: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Mean CIE76 difference over the product pixels (weighted by alpha). The square root is taken of the
    squared distance plus a tiny constant: its gradient at an exact match (an unperturbed sample) is infinite."""
    squared = (srgb_to_lab(out) - srgb_to_lab(target)).pow(2).sum(dim=1)
    return ((squared + 1e-6).sqrt() * alpha[:, 0]).sum() / alpha.sum().clamp_min(1e-6)


def crop_and_mirror(images: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, mirror: torch.Tensor) -> torch.Tensor:
    """N x C x S x S images cropped to ``scale`` (N, share of the side) at ``shift`` (N x 2, in [-1, 1] units of
    the room left), mirrored where ``mirror`` (N bools), resized back to S x S (bilinear)."""
    theta = torch.zeros(len(images), 2, 3, device=images.device)
    theta[:, 0, 0] = torch.where(mirror, -scale, scale).to(images.device)
    theta[:, 1, 1] = scale.to(images.device)
    theta[:, :, 2] = (shift * (1 - scale)[:, None]).to(images.device)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


class HarmoniseObjective(Objective):
    """A ``HarmoniseConfig`` network on uint8 photos N x 3 x S x S and their uint8 masks N x 1 x S x S."""

    CONFIG = HarmoniseConfig
    DEFAULTS = {"batch_size": 32, "betas": (0.9, 0.999), "ema_decay": 0.995}
    # One batch of extreme perturbations must not throw the head far off.
    CLIP_NORM = 1.0

    def __init__(
        self,
        config: HarmoniseConfig,
        images: torch.Tensor,
        masks: torch.Tensor,
        *,
        device: torch.device,
        seed: int,
        batch_size: int,
        lr: float = 2e-3,
    ) -> None:
        super().__init__(config, device=device, seed=seed, batch_size=batch_size)
        size = config.size
        if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"images must be uint8 N x 3 x {size} x {size}, got {images.dtype} {tuple(images.shape)}")
        if masks.dtype != torch.uint8 or tuple(masks.shape) != (len(images), 1, size, size):
            raise ValueError(f"masks must be uint8 {len(images)} x 1 x {size} x {size}, got {masks.dtype} {tuple(masks.shape)}")
        if len(images) < 1:
            raise ValueError("training needs at least one photo")
        self._build_model(HarmoniseNet, lr)
        self.images = images.to(self.device)
        self.masks = masks.to(self.device)

    @property
    def loss_keys(self) -> tuple[str, ...]:
        return ("loss", "error", "delta_e")

    def sample_batch(self, rng: torch.Generator) -> dict[str, torch.Tensor]:
        """Targets (augmented: cropped, mirrored, relit), alphas, and composites of the product under another
        light than its backdrop's (``pairing``, module docstring). Every draw comes from ``rng``, in a fixed order."""
        cfg, b = self.config, self.batch_size
        index = torch.randint(0, len(self.images), (b,), generator=rng)
        mirror = torch.rand(b, generator=rng) < 0.5
        scale = 1 - torch.rand(b, generator=rng) * (1 - cfg.crop)
        shift = torch.rand(b, 2, generator=rng) * 2 - 1
        if cfg.pairing == "product":
            scene = random_perturbations(b, rng, identity_p=SCENE_IDENTITY_P, scale=cfg.scene_scale)
            product_light = random_perturbations(b, rng, identity_p=cfg.identity_p, scale=cfg.perturb_scale)
        else:
            scene = random_perturbations(b, rng, identity_p=cfg.as_shot_p, scale=cfg.scene_scale)
            own = random_perturbations(b, rng, identity_p=cfg.as_shot_p, scale=cfg.perturb_scale)
            shared = torch.rand(b, generator=rng) < cfg.identity_p
            product_light = Perturbation(**{
                name: torch.where(shared, getattr(scene, name), getattr(own, name)) for name in RANGES
            })
        index = index.to(self.device)
        both = torch.cat((self.images[index], self.masks[index]), dim=1).float().div_(255.0)
        if cfg.crop < 1:
            both = crop_and_mirror(both, scale, shift, mirror)
        else:
            both = torch.where(mirror.to(self.device)[:, None, None, None], both.flip(-1), both)
        photo, alpha = both[:, :3], both[:, 3:]
        target = apply_perturbation(photo, scene) if cfg.scene_scale > 0 else photo
        if cfg.pairing == "product":
            # The relit photo's product perturbed again: the backdrop keeps the target's light.
            product = apply_perturbation(target, product_light)
        else:
            # The photo as shot lit twice, independently: the product must take the backdrop's light.
            product = apply_perturbation(photo, product_light)
        # Written as a lerp so that an unchanged product gives the target to the bit.
        return {"original": target, "alpha": alpha, "composite": target + alpha * (product - target)}

    def terms(self, batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None) -> dict[str, torch.Tensor]:
        model = self.model_train if model is None else model
        params = model(batch["composite"], batch["alpha"])
        restored = apply_transform(batch["composite"], params, exact=False)
        error = masked_error(restored, batch["original"], batch["alpha"], 2 if self.config.loss == "l2" else 1)
        if self.config.lab_weight > 0:
            lab = masked_delta_e(restored, batch["original"], batch["alpha"])
            loss = error + self.config.lab_weight * lab / 100.0
        else:
            # Logged, not trained on: no graph, and every fourth pixel estimates the mean well enough.
            with torch.no_grad():
                every = (..., slice(None, None, 2), slice(None, None, 2))
                lab = masked_delta_e(restored[every], batch["original"][every], batch["alpha"][every])
            loss = error
        return {"loss": loss, "error": error.detach(), "delta_e": lab.detach()}
