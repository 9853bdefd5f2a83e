"""Training loop for the class-conditional GAN: D step, G step, EMA, save/resume.

Every random draw after construction (batches, noise, augmentation) comes from
one CPU ``torch.Generator`` whose state is checkpointed, so a resumed run
continues exactly as an uninterrupted one would, and two trainers with the
same seed and data end with identical weights on the CPU.
"""

from __future__ import annotations

from typing import Any

import torch

from .augment import diff_augment
from .config import GANConfig
from .devices import resolve_device
from .fitting import FitLoop, build_seeded, check_dataset, check_options, unwrapped
from .ema import ema_decay_at, make_ema, recalibrate_batchnorm, update_ema
from .networks import Discriminator, Generator
from .objectives import losses_for, r1_penalty, sample_noise

HISTORY_KEYS = ("step", "d_loss", "g_loss", "d_real", "d_fake")
GRID_COLUMNS = 8
# Batches of the EMA generator's own samples used to recompute its BatchNorm statistics.
CALIBRATION_BATCHES = 8



class DiscriminatorPasses(torch.nn.Module):
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
    """Generator and discriminator initialised from ``seed`` on the CPU (see ``fitting.build_seeded``)."""
    return build_seeded(lambda: (generator(config), discriminator(config)), seed)


class Trainer(FitLoop):
    """Trains a ``GANConfig`` model on uint8 images with integer class labels."""

    RESUMES = ("cgan",)
    DISTRIBUTES = True
    GENERATOR = Generator
    DISCRIMINATOR = Discriminator

    def __init__(
        self,
        config: GANConfig,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int = 32,
        lr_g: float = 2e-4,
        lr_d: float = 2e-4,
        betas: tuple[float, float] = (0.0, 0.99),
        ema_decay: float = 0.999,
        seed: int = 0,
        device: str | torch.device = "cpu",
        r1_gamma: float = 0.0,
        r1_every: int = 16,
    ) -> None:
        check_dataset(config, images, labels)
        check_options(batch_size, ema_decay)
        if r1_every < 1:
            raise ValueError(f"r1_every must be >= 1, got {r1_every}")
        self.config = config
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.lr_g, self.lr_d = float(lr_g), float(lr_d)
        # Adam refuses a mix of int and float betas, and checkpoints store a list.
        self.betas = (float(betas[0]), float(betas[1]))
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)
        self.r1_gamma, self.r1_every = float(r1_gamma), int(r1_every)
        self.d_loss_fn, self.g_loss_fn = losses_for(config.loss)

        # The dataset is small (hundreds of photos), so it lives on the device as uint8.
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)

        generator, discriminator = build_networks(config, self.seed, self.GENERATOR, self.DISCRIMINATOR)
        self.generator = generator.to(self.device).train()
        self.discriminator = discriminator.to(self.device).train()
        self.generator_ema = make_ema(self.generator)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr_g, betas=self.betas)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.lr_d, betas=self.betas)
        self._start_loop(HISTORY_KEYS)
        self._calibrated_at: int | None = None
        self._wrap_networks(unwrapped)

    def _wrap_networks(self, wrap) -> None:
        # The G step's D forward goes through the raw discriminator: its weights take no gradient there,
        # and a second forward of a DDP module before its backward would break gradient synchronisation.
        self.generator_train = wrap(self.generator)
        self.discriminator_train = wrap(DiscriminatorPasses(self.discriminator))

    def _synced_modules(self) -> list[torch.nn.Module]:
        return [self.generator, self.discriminator, self.generator_ema]

    def hyperparameters(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this trainer (plain python values)."""
        return {
            "batch_size": self.batch_size,
            "lr_g": self.lr_g,
            "lr_d": self.lr_d,
            "betas": list(self.betas),
            "ema_decay": self.ema_decay,
            "seed": self.seed,
            "r1_gamma": self.r1_gamma,
            "r1_every": self.r1_every,
        }

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        return diff_augment(images, self.config.augment, self.rng)

    def _train_step(self) -> dict[str, torch.Tensor]:
        G, D = self.generator_train, self.discriminator
        index = torch.randint(0, len(self.images), (self.batch_size,), generator=self.rng).to(self.device)
        real = self.images[index].float().div_(127.5).sub_(1.0)
        labels = self._condition_batch(self.labels[index])
        z = torch.randn(self.batch_size, self.config.z_dim, generator=self.rng).to(self.device)
        # One generator forward serves both steps: detached for D, then through the updated D for G.
        fake = G(z, labels)

        D.requires_grad_(True)
        # Real and fake in one batch: D has no batch statistics, so this equals two passes, faster.
        passes = [(self._augment(torch.cat([real, fake.detach()])), torch.cat([labels, labels]))]
        # Lazy R1 (StyleGAN2): every k steps, scaled by k to keep its average strength.
        with_r1 = self.r1_gamma > 0 and self.step % self.r1_every == 0
        if with_r1:
            real_in = real.detach().requires_grad_(True)
            passes.append((self._augment(real_in), labels))
        outputs = self.discriminator_train(*passes)
        logits = outputs[0]
        real_logits, fake_logits = logits[: self.batch_size], logits[self.batch_size :]
        d_loss = self.d_loss_fn(real_logits, fake_logits)
        d_total = d_loss
        if with_r1:
            d_total = d_total + r1_penalty(outputs[1], real_in) * (0.5 * self.r1_gamma * self.r1_every)
        self.opt_d.zero_grad(set_to_none=True)
        d_total.backward()
        self.opt_d.step()

        # D's weights need no gradient in the G step; skipping them saves a third of its backward.
        D.requires_grad_(False)
        g_loss = self.g_loss_fn(D(self._augment(fake), labels))
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        D.requires_grad_(True)

        update_ema(self.generator_ema, G, ema_decay_at(self.step, self.ema_decay))
        self.step += 1
        return {
            "d_loss": d_loss.detach(),
            "g_loss": g_loss.detach(),
            "d_real": real_logits.detach().mean(),
            "d_fake": fake_logits.detach().mean(),
        }

    def _condition_batch(self, labels: torch.Tensor) -> torch.Tensor:
        """The conditions a training batch is trained on (kinds with optional conditions drop some)."""
        return labels

    def _calibration_labels(self, count: int) -> torch.Tensor:
        """Conditions of the EMA generator's BatchNorm calibration batches: every class in turn."""
        return torch.arange(count) % self.config.num_classes

    def _train_mode(self) -> None:
        self.generator.train()
        self.discriminator.train()

    def calibrate_ema(self) -> None:
        """Recompute the EMA generator's BatchNorm statistics from its own samples.

        Deterministic (own fixed-seed noise, classes in turn) and invisible to
        training: the next EMA update copies the raw statistics back.
        """
        # The EMA weights only change with a training step: once per step is enough (saving a version
        # asks for it twice, for the sample grid and for the checkpoint).
        if self._calibrated_at == self.step:
            return
        self._calibrated_at = self.step
        noise = torch.Generator(device="cpu").manual_seed(self.seed + 1)

        def batches():
            for _ in range(CALIBRATION_BATCHES):
                z = torch.randn(self.batch_size, self.config.z_dim, generator=noise)
                labels = self._calibration_labels(self.batch_size)
                yield z.to(self.device), labels.to(self.device)

        recalibrate_batchnorm(self.generator_ema, batches())

    def sample_grid(self, columns: int = GRID_COLUMNS) -> torch.Tensor:
        """EMA samples, one row per class, in [-1, 1] on the CPU: (classes * columns) x 3 x S x S.

        Every row uses the same fixed noise (seeded by the trainer seed), so grids
        from successive steps are comparable and columns show class conditioning.
        """
        num_classes = self.config.num_classes
        z = sample_noise(columns, self.config.z_dim, self.seed).repeat(num_classes, 1)
        labels = self._grid_labels(columns)
        self.calibrate_ema()
        with torch.inference_mode():
            return self.generator_ema(z.to(self.device), labels.to(self.device)).cpu()

    def _grid_labels(self, columns: int) -> torch.Tensor:
        """The conditions of the grid: each class ``columns`` times, one row per class."""
        return self.config.class_rows(torch.arange(self.config.num_classes).repeat_interleave(columns))

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> GANConfig:
        return GANConfig.from_dict(data)

    def network_state(self) -> dict[str, Any]:
        # The sampler uses the EMA generator's BatchNorm statistics: refresh them before they are saved.
        self.calibrate_ema()
        return {
            "generator_ema": self.generator_ema.state_dict(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
        }

    def load_network_state(self, ckpt: dict[str, Any]) -> None:
        self._calibrated_at = None
        self.generator.load_state_dict(ckpt["generator"])
        self.generator_ema.load_state_dict(ckpt["generator_ema"])
        self.discriminator.load_state_dict(ckpt["discriminator"])
        self.opt_g.load_state_dict(ckpt["optimizer_g"])
        self.opt_d.load_state_dict(ckpt["optimizer_d"])


