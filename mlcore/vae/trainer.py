"""Training loop for the "vae" and "cvae" kinds: ELBO step, EMA, save/resume.

Same interface as ``mlcore.trainer.Trainer`` (what imagegen's services use).
Every random draw after construction (batch indices, reparameterisation noise)
comes from one CPU ``torch.Generator`` whose state is checkpointed, so a resumed
run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import torch

from ..devices import resolve_device
from ..fitting import FitLoop
from ..ema import ema_decay_at, make_ema, update_ema
from ..objectives import sample_noise
from ..trainer import _check_dataset
from .config import VAE_KINDS, VAEConfig, config_from_dict
from .networks import VAE
from .objectives import elbo_terms, kl_weight, reparameterize

LOSS_KEYS = ("loss", "recon", "kl")
HISTORY_KEYS = ("step", *LOSS_KEYS)
GRID_COLUMNS = 8



def build_model(config: VAEConfig, seed: int) -> VAE:
    """Encoder + decoder initialised from ``seed`` on the CPU, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VAE(config)


class Trainer(FitLoop):
    """Trains a ``VAEConfig`` model on uint8 images (N x 3 x S x S) with long class labels (N)."""

    RESUMES = VAE_KINDS

    def __init__(
        self,
        config: VAEConfig,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int = 32,
        lr: float = 5e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        ema_decay: float = 0.999,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        if not isinstance(config, VAEConfig):
            raise ValueError(f"config must be a VAEConfig, got {type(config).__name__}")
        _check_dataset(config, images, labels)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.config = config
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)

        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.model = build_model(config, self.seed).to(self.device).train()
        # EMA of encoder and decoder together; its decoder is what samples.
        self.model_ema = make_ema(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr, betas=self.betas)
        self._start_loop(HISTORY_KEYS)

    def hyperparameters(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this trainer (plain python values)."""
        return {
            "batch_size": self.batch_size,
            "lr": self.lr,
            "betas": list(self.betas),
            "ema_decay": self.ema_decay,
            "seed": self.seed,
        }

    def _labels_for(self, labels: torch.Tensor) -> torch.Tensor | None:
        return labels if self.config.conditional else None

    def _train_step(self) -> dict[str, torch.Tensor]:
        cfg = self.config
        index = torch.randint(0, len(self.images), (self.batch_size,), generator=self.rng).to(self.device)
        x = self.images[index].float().div_(127.5).sub_(1.0)
        labels = self._labels_for(self.labels[index])
        eps = torch.randn(self.batch_size, cfg.latent_dim, generator=self.rng).to(self.device)
        mu, logvar = self.model.encoder(x, labels)
        x_hat = self.model.decoder(reparameterize(mu, logvar, eps), labels)
        terms = elbo_terms(
            x_hat, x, mu, logvar, sigma=cfg.recon_sigma,
            kl_scale=kl_weight(self.step, cfg.beta, cfg.kl_warmup_steps),
        )
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        self.optimizer.step()
        update_ema(self.model_ema, self.model, ema_decay_at(self.step, self.ema_decay))
        self.step += 1
        return {key: value.detach() for key, value in terms.items()}

    def _train_mode(self) -> None:
        self.model.train()

    def grid_inputs(self, columns: int = GRID_COLUMNS) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed (trainer-seeded) noise and labels of ``sample_grid``: num_classes rows of ``columns``.

        "cvae": every row (one per class) reuses the same noise, so columns show the conditioning.
        "vae": the rows hold distinct samples (the class is not an input).
        """
        rows = self.config.num_classes
        if self.config.conditional:
            z = sample_noise(columns, self.config.latent_dim, self.seed).repeat(rows, 1)
        else:
            z = sample_noise(rows * columns, self.config.latent_dim, self.seed)
        return z, torch.arange(rows).repeat_interleave(columns)

    def sample_grid(self, columns: int = GRID_COLUMNS) -> torch.Tensor:
        """EMA decoder samples in [-1, 1] on the CPU: (num_classes * columns) x 3 x S x S."""
        z, labels = self.grid_inputs(columns)
        with torch.inference_mode():
            out = self.model_ema.decoder(z.to(self.device), self._labels_for(labels.to(self.device)))
        return out.cpu()

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        return config_from_dict(data)

    def network_state(self) -> dict[str, Any]:
        return {
            "model_ema": self.model_ema.state_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_network_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.model_ema.load_state_dict(ckpt["model_ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])


