"""The scene GAN's objective: per step a discriminator step (adversarial loss on logits, the self-supervised
reconstruction of the real images, lazy R1) and a generator step, as the one ``Trainer`` runs them.

The losses, R1 and DiffAugment are ``mlcore.gan``'s and ``mlcore.augment``'s own; what is particular here is
the unconditional data, the horizontal flips and the reconstruction term.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import diff_augment
from ..ema import recalibrate_batchnorm
from ..gan.objective import losses_for, r1_penalty
from ..seeding import build_seeded
from ..training.objective import Objective, Optimise
from .config import SceneGANConfig
from .networks import Discriminator, Generator, reconstruction_targets

# Batches of the EMA generator's own samples that recompute its BatchNorm statistics before it samples.
CALIBRATION_BATCHES = 8


def check_images(config: SceneGANConfig, images: torch.Tensor) -> torch.Tensor:
    """``images`` if they are uint8 N x 3 x S x S (S = ``config.image_size``), N >= 1; else ``ValueError``."""
    size = config.image_size
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4 \
            or tuple(images.shape[1:]) != (3, size, size):
        shape = (images.dtype, tuple(images.shape)) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be uint8 N x 3 x {size} x {size}, got {shape}")
    if len(images) == 0:
        raise ValueError("cannot train on an empty scene set")
    return images


class SceneGANObjective(Objective):
    """A ``SceneGANConfig`` GAN on a scene set (uint8 N x 3 x S x S, ``data.training_set``).

    Each step: a batch of real backdrops (each mirrored left-right at random: a mirrored room is as plausible,
    and it doubles a small set for free), one generator forward; a D step on real and generated images
    (DiffAugment on both; the reconstruction loss of the augmented reals, weighted by ``recon_weight``; R1
    every ``r1_every`` steps when ``r1_gamma`` > 0); then a G step through the updated D. The EMA generator
    samples."""

    CONFIG = SceneGANConfig
    # FastGAN's Adam betas (0.5, 0.999) and batch 8; EMA decay as the other GANs (ramped up, ``ema``).
    DEFAULTS = {"batch_size": 8, "betas": (0.5, 0.999), "ema_decay": 0.999}
    LOSS_KEYS = ("d_loss", "g_loss", "d_real", "d_fake", "recon")
    EMA = "generator"

    def __init__(
        self,
        config: SceneGANConfig,
        images: torch.Tensor,
        *,
        device: torch.device,
        seed: int,
        batch_size: int,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        r1_gamma: float = 0.0,
        r1_every: int = 16,
    ) -> None:
        super().__init__(config, device=device, seed=seed, batch_size=batch_size)
        self.images = check_images(config, images).to(device)
        if r1_every < 1:
            raise ValueError(f"r1_every must be >= 1, got {r1_every}")
        if r1_gamma < 0:
            raise ValueError(f"r1_gamma must be >= 0, got {r1_gamma}")
        self.lr_g, self.lr_d = float(lr_g), float(lr_d)
        self.r1_gamma, self.r1_every = float(r1_gamma), int(r1_every)
        self.d_loss_fn, self.g_loss_fn = losses_for(config.loss)
        generator, discriminator = build_seeded(lambda: (Generator(config), Discriminator(config)), seed)
        self.generator = generator.to(device).train()
        self.discriminator = discriminator.to(device).train()
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}

    def options(self) -> dict[str, Any]:
        return {"lr_g": self.lr_g, "lr_d": self.lr_d, "r1_gamma": self.r1_gamma, "r1_every": self.r1_every}

    def param_groups(self) -> dict[str, tuple[Iterable[nn.Parameter], float]]:
        return {
            "optimizer_g": (self.generator.parameters(), self.lr_g),
            "optimizer_d": (self.discriminator.parameters(), self.lr_d),
        }

    def wrap(self, wrap) -> None:
        """Single-process only (``DISTRIBUTES`` is False): a scene set trains in minutes on a CPU."""

    def real_batch(self, rng: torch.Generator) -> torch.Tensor:
        """``batch_size`` training images in [-1, 1], drawn with replacement, each mirrored with odds 1/2."""
        index = torch.randint(0, len(self.images), (self.batch_size,), generator=rng).to(self.device)
        real = self.images[index].float().div_(127.5).sub_(1.0)
        flip = (torch.rand(self.batch_size, generator=rng) < 0.5).to(self.device)
        return torch.where(flip[:, None, None, None], real.flip(-1), real)

    def train_step(self, rng: torch.Generator, step: int, optimise: Optimise) -> dict[str, torch.Tensor]:
        G, D, n = self.generator, self.discriminator, self.batch_size
        real = self.real_batch(rng)
        z = torch.randn(n, self.config.z_dim, generator=rng).to(self.device)
        quarter = int(torch.randint(4, (), generator=rng))
        # One generator forward serves both steps: detached for D, then through the updated D for G.
        fake = G(z)

        def augment(images: torch.Tensor) -> torch.Tensor:
            return diff_augment(images, self.config.augment, rng)

        D.requires_grad_(True)
        # Real and fake in one batch: D has no batch statistics, so this equals two passes, and is faster.
        seen = augment(torch.cat([real, fake.detach()]))
        logits, final, middle = D.features(seen)
        real_logits, fake_logits = logits[:n], logits[n:]
        d_loss = self.d_loss_fn(real_logits, fake_logits)
        d_total = d_loss
        recon = torch.zeros((), device=self.device)
        if self.config.recon_weight > 0:
            # The reconstruction of what D saw of the reals (augmented), so it cannot ignore the augmentation.
            whole, part = D.reconstruct(final[:n], middle[:n], quarter)
            whole_target, part_target = reconstruction_targets(seen[:n], quarter)
            recon = F.l1_loss(whole, whole_target) + F.l1_loss(part, part_target)
            d_total = d_total + self.config.recon_weight * recon
        # Lazy R1 (StyleGAN2): every k steps, scaled by k to keep its average strength.
        if self.r1_gamma > 0 and step % self.r1_every == 0:
            real_in = real.detach().requires_grad_(True)
            d_total = d_total + r1_penalty(D(augment(real_in)), real_in) * (0.5 * self.r1_gamma * self.r1_every)
        optimise("optimizer_d", d_total)

        # D's weights need no gradient in the G step; skipping them saves a third of its backward.
        D.requires_grad_(False)
        g_loss = self.g_loss_fn(D(augment(fake)))
        optimise("optimizer_g", g_loss)
        D.requires_grad_(True)
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": real_logits.mean(), "d_fake": fake_logits.mean(),
                "recon": recon}

    def calibrate_ema(self, ema: nn.Module) -> None:
        """Recompute the EMA generator's BatchNorm statistics from its own samples (fixed noise seeded by the
        trainer's seed): the raw generator's running statistics were measured on other weights, and sampling
        with them gives washed-out or saturated images. Invisible to training: the next EMA update copies the
        raw statistics back."""
        noise = torch.Generator(device="cpu").manual_seed(self.seed + 1)
        batches = [
            (torch.randn(self.batch_size, self.config.z_dim, generator=noise).to(self.device),)
            for _ in range(CALIBRATION_BATCHES)
        ]
        recalibrate_batchnorm(ema, batches)
