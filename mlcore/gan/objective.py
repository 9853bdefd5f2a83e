"""The class-conditional GAN's objective: its losses as pure functions of discriminator logits, and
``GANObjective``, the D step and G step the one ``Trainer`` runs, with the grid and EMA calibration.

Every loss takes raw logits (never probabilities) so the softplus forms stay
numerically stable: softplus(-x) == -log(sigmoid(x)) without the underflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import diff_augment
from ..ema import recalibrate_batchnorm
from ..seeding import build_seeded, sample_noise
from ..training.labelled import LabelledImages
from ..training.objective import Objective, Optimise
from .config import GANConfig
from .networks import Discriminator, Generator

# Batches of the EMA generator's own samples used to recompute its BatchNorm statistics.
CALIBRATION_BATCHES = 8


def d_hinge_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]."""
    return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()


def g_hinge_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -E[D(G(z))]."""
    return -fake_logits.mean()


def d_nonsaturating_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator logistic loss: -log sigmoid(D(x)) - log(1 - sigmoid(D(G(z))))."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_nonsaturating_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log sigmoid(D(G(z))) (Goodfellow et al. 2014)."""
    return F.softplus(-fake_logits).mean()


LossPair = tuple[
    Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    Callable[[torch.Tensor], torch.Tensor],
]

LOSSES: dict[str, LossPair] = {
    "hinge": (d_hinge_loss, g_hinge_loss),
    "nonsaturating": (d_nonsaturating_loss, g_nonsaturating_loss),
}


def losses_for(name: str) -> LossPair:
    """The (discriminator, generator) loss functions of a config's ``loss`` name."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; known: {sorted(LOSSES)}") from None


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """E[||grad_x D(x)||^2] on real images (Mescheder et al. 2018), without the gamma/2 factor.

    ``real_images`` must have ``requires_grad=True`` and ``real_logits`` must have
    been computed from them; the graph is kept so the penalty can be backpropagated.
    """
    (grads,) = torch.autograd.grad(real_logits.sum(), real_images, create_graph=True)
    return grads.pow(2).flatten(1).sum(dim=1).mean()


class DiscriminatorPasses(nn.Module):
    """The discriminator on several (images, conditions) inputs in one ``forward``.

    The D step may need two passes (the batch, and the lazy R1 penalty's reals); DistributedDataParallel
    expects one forward per backward, so both go through this one module, in the same order as before."""

    def __init__(self, discriminator: Discriminator) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(self, *inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return tuple(self.discriminator(images, labels) for images, labels in inputs)


def build_networks(
    config: GANConfig, seed: int, generator: type[Generator] = Generator, discriminator: type[Discriminator] = Discriminator
) -> tuple[Generator, Discriminator]:
    """Generator and discriminator initialised from ``seed`` on the CPU (see ``seeding.build_seeded``)."""
    return build_seeded(lambda: (generator(config), discriminator(config)), seed)


class GANObjective(Objective):
    """A ``GANConfig`` model on uint8 images with integer class labels: per step a D step on real and generated
    images (DiffAugment on both, lazy R1 every ``r1_every`` steps when ``r1_gamma`` > 0), then a G step
    through the updated D. The EMA generator samples."""

    CONFIG = GANConfig
    DEFAULTS = {"batch_size": 32, "betas": (0.0, 0.99), "ema_decay": 0.999}
    LOSS_KEYS = ("d_loss", "g_loss", "d_real", "d_fake")
    EMA = "generator"
    DISTRIBUTES = True
    GENERATOR = Generator
    DISCRIMINATOR = Discriminator

    def __init__(
        self,
        config: GANConfig,
        images: torch.Tensor,
        labels: torch.Tensor,
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
        self.data = LabelledImages(config, images, labels, device)
        if r1_every < 1:
            raise ValueError(f"r1_every must be >= 1, got {r1_every}")
        self.lr_g, self.lr_d = float(lr_g), float(lr_d)
        self.r1_gamma, self.r1_every = float(r1_gamma), int(r1_every)
        self.d_loss_fn, self.g_loss_fn = losses_for(config.loss)
        generator, discriminator = build_networks(config, seed, self.GENERATOR, self.DISCRIMINATOR)
        self.generator = generator.to(device).train()
        self.discriminator = discriminator.to(device).train()
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        self.wrap(lambda module: module)

    def options(self) -> dict[str, Any]:
        return {"lr_g": self.lr_g, "lr_d": self.lr_d, "r1_gamma": self.r1_gamma, "r1_every": self.r1_every}

    def param_groups(self) -> dict[str, tuple[Iterable[nn.Parameter], float]]:
        return {"optimizer_g": (self.generator.parameters(), self.lr_g), "optimizer_d": (self.discriminator.parameters(), self.lr_d)}

    def wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        # The G step's D forward goes through the raw discriminator: its weights take no gradient there,
        # and a second forward of a DDP module before its backward would break gradient synchronisation.
        self.generator_train = wrap(self.generator)
        self.discriminator_train = wrap(DiscriminatorPasses(self.discriminator))

    def condition_batch(self, labels: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """The conditions a training batch is trained on (kinds with optional conditions drop some)."""
        return labels

    def train_step(self, rng: torch.Generator, step: int, optimise: Optimise) -> dict[str, torch.Tensor]:
        G, D, n = self.generator_train, self.discriminator, self.batch_size
        index = self.data.draw(rng, n)
        real = self.data.pixels(index)
        labels = self.condition_batch(self.data.labels[index], rng)
        z = torch.randn(n, self.config.z_dim, generator=rng).to(self.device)
        # One generator forward serves both steps: detached for D, then through the updated D for G.
        fake = G(z, labels)

        def augment(images: torch.Tensor) -> torch.Tensor:
            return diff_augment(images, self.config.augment, rng)

        D.requires_grad_(True)
        # Real and fake in one batch: D has no batch statistics, so this equals two passes, faster.
        passes = [(augment(torch.cat([real, fake.detach()])), torch.cat([labels, labels]))]
        # Lazy R1 (StyleGAN2): every k steps, scaled by k to keep its average strength.
        with_r1 = self.r1_gamma > 0 and step % self.r1_every == 0
        if with_r1:
            real_in = real.detach().requires_grad_(True)
            passes.append((augment(real_in), labels))
        outputs = self.discriminator_train(*passes)
        real_logits, fake_logits = outputs[0][:n], outputs[0][n:]
        d_loss = self.d_loss_fn(real_logits, fake_logits)
        d_total = d_loss
        if with_r1:
            d_total = d_total + r1_penalty(outputs[1], real_in) * (0.5 * self.r1_gamma * self.r1_every)
        optimise("optimizer_d", d_total)

        # D's weights need no gradient in the G step; skipping them saves a third of its backward.
        D.requires_grad_(False)
        g_loss = self.g_loss_fn(D(augment(fake), labels))
        optimise("optimizer_g", g_loss)
        D.requires_grad_(True)
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": real_logits.mean(), "d_fake": fake_logits.mean()}

    def calibration_labels(self, count: int) -> torch.Tensor:
        """Conditions of the EMA generator's BatchNorm calibration batches: every class in turn."""
        return torch.arange(count) % self.config.num_classes

    def calibrate_ema(self, ema: nn.Module) -> None:
        """Recompute the EMA generator's BatchNorm statistics from its own samples.

        The EMA copy carries the raw generator's running statistics, measured on other weights; sampling
        with them gives washed-out or saturated images. Deterministic (own fixed-seed noise, classes in
        turn) and invisible to training: the next EMA update copies the raw statistics back.
        """
        noise = torch.Generator(device="cpu").manual_seed(self.seed + 1)

        def batches():
            for _ in range(CALIBRATION_BATCHES):
                z = torch.randn(self.batch_size, self.config.z_dim, generator=noise)
                yield z.to(self.device), self.calibration_labels(self.batch_size).to(self.device)

        recalibrate_batchnorm(ema, batches())

    def grid_labels(self, columns: int) -> torch.Tensor:
        """The conditions of the grid: each class ``columns`` times, one row per class."""
        return self.config.class_rows(torch.arange(self.config.num_classes).repeat_interleave(columns))

    def sample_grid(self, ema: nn.Module, columns: int) -> torch.Tensor:
        """Every row uses the same fixed noise (seeded by the trainer seed), so columns show the conditioning."""
        z = sample_noise(columns, self.config.z_dim, self.seed).repeat(self.config.num_classes, 1)
        with torch.inference_mode():
            return ema(z.to(self.device), self.grid_labels(columns).to(self.device)).cpu()
