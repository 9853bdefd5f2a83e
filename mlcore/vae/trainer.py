"""Training loop for the "vae" and "cvae" kinds: ELBO step, EMA, save/resume.

Same interface as ``mlcore.trainer.Trainer`` (what imagegen's services use).
Every random draw after construction (batch indices, reparameterisation noise)
comes from one CPU ``torch.Generator`` whose state is checkpointed, so a resumed
run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import torch

from ..fitting import EMAModelLoop
from ..objectives import sample_noise
from .config import VAE_KINDS, VAEConfig, config_from_dict
from .networks import VAE
from .objectives import elbo_terms, kl_weight, reparameterize

LOSS_KEYS = ("loss", "recon", "kl")
HISTORY_KEYS = ("step", *LOSS_KEYS)
GRID_COLUMNS = 8


class ELBOPass(torch.nn.Module):
    """Encoder then decoder in one ``forward`` (what DistributedDataParallel wraps): (mu, logvar, x_hat)."""

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.model.encoder(x, labels)
        return mu, logvar, self.model.decoder(reparameterize(mu, logvar, eps), labels)


class Trainer(EMAModelLoop):
    """Trains a ``VAEConfig`` model on uint8 images (N x 3 x S x S) with long class labels (N).

    The EMA copy holds encoder and decoder together; its decoder is what samples."""

    RESUMES = VAE_KINDS
    DISTRIBUTES = True
    CONFIG = VAEConfig
    HISTORY_KEYS = HISTORY_KEYS

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
        super().__init__(
            config, images, labels, VAE,
            batch_size=batch_size, lr=lr, betas=betas, ema_decay=ema_decay, seed=seed, device=device,
        )

    def _labels_for(self, labels: torch.Tensor) -> torch.Tensor | None:
        return labels if self.config.conditional else None

    def _train_step(self) -> dict[str, torch.Tensor]:
        cfg = self.config
        index = torch.randint(0, len(self.images), (self.batch_size,), generator=self.rng).to(self.device)
        x = self.images[index].float().div_(127.5).sub_(1.0)
        labels = self._labels_for(self.labels[index])
        eps = torch.randn(self.batch_size, cfg.latent_dim, generator=self.rng).to(self.device)
        mu, logvar, x_hat = self.model_train(x, labels, eps)
        terms = elbo_terms(
            x_hat, x, mu, logvar, sigma=cfg.recon_sigma,
            kl_scale=kl_weight(self.step, cfg.beta, cfg.kl_warmup_steps),
        )
        return self._optimise(terms)

    def _wrap_networks(self, wrap) -> None:
        self.model_train = wrap(ELBOPass(self.model))

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
