"""The VAE objective: the negative ELBO as pure functions of tensors, and ``VAEObjective``, the ELBO step the
one ``Trainer`` runs ("vae" and "cvae").

Likelihood: Gaussian with fixed standard deviation ``sigma`` on pixels in
[-1, 1]:  -log p(x|z) = sum_pixels (x - x_hat)^2 / (2 sigma^2) + D log(sigma sqrt(2 pi)).
The constant (``gaussian_nll_constant``) does not affect training and is left
out of the reported "recon" term.

Reduction: reconstruction and KL are both SUMMED over their dimensions per
image (pixels x channels, resp. latent dims), then AVERAGED over the batch, so
``loss = recon + kl_weight * kl`` is the per-image negative ELBO (minus the
constant) when ``kl_weight`` is 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from ..seeding import sample_noise
from ..training.labelled import LabelledImages
from ..training.objective import Objective, Optimise
from .config import VAEConfig
from .networks import VAE


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with sigma = exp(logvar / 2); ``eps`` ~ N(0, I) drawn by the caller."""
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per image, shape (N,).

    -0.5 * sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)), summed over the latent dims.
    """
    return -0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp()).flatten(1).sum(dim=1)


def gaussian_nll(reconstruction: torch.Tensor, target: torch.Tensor, sigma: float) -> torch.Tensor:
    """-log N(target; reconstruction, sigma^2 I) per image, shape (N,), without the constant.

    sum over channels and pixels of (target - reconstruction)^2 / (2 sigma^2).
    """
    return (target - reconstruction).pow(2).flatten(1).sum(dim=1) / (2.0 * sigma * sigma)


def gaussian_nll_constant(num_dims: int, sigma: float) -> float:
    """The term dropped by ``gaussian_nll``: D * log(sigma * sqrt(2 pi)) for D pixel values."""
    return num_dims * math.log(sigma * math.sqrt(2.0 * math.pi))


def kl_weight(step: int, beta: float = 1.0, warmup_steps: int = 0) -> float:
    """Weight of the KL term at (0-based) ``step``: beta, ramped linearly over ``warmup_steps``."""
    if warmup_steps <= 0:
        return float(beta)
    return float(beta) * min(1.0, (step + 1) / warmup_steps)


def elbo_terms(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    sigma: float,
    kl_scale: float = 1.0,
) -> dict[str, torch.Tensor]:
    """Batch means of the per-image terms: {"loss": recon + kl_scale * kl, "recon": ..., "kl": ...}."""
    recon = gaussian_nll(reconstruction, target, sigma).mean()
    kl = kl_divergence(mu, logvar).mean()
    return {"loss": recon + kl_scale * kl, "recon": recon, "kl": kl}


class ELBOPass(nn.Module):
    """Encoder then decoder in one ``forward`` (what DistributedDataParallel wraps): (mu, logvar, x_hat)."""

    def __init__(self, model: VAE) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.model.encoder(x, labels)
        return mu, logvar, self.model.decoder(reparameterize(mu, logvar, eps), labels)


class VAEObjective(Objective):
    """A ``VAEConfig`` model on uint8 images (N x 3 x S x S) with long class labels (N). The EMA copy holds
    encoder and decoder together; its decoder is what samples."""

    CONFIG = VAEConfig
    DEFAULTS = {"batch_size": 32, "betas": (0.9, 0.999), "ema_decay": 0.999}
    LOSS_KEYS = ("loss", "recon", "kl")
    DISTRIBUTES = True

    def __init__(
        self, config: VAEConfig, images: torch.Tensor, labels: torch.Tensor, *,
        device: torch.device, seed: int, batch_size: int, lr: float = 5e-4,
    ) -> None:
        super().__init__(config, device=device, seed=seed, batch_size=batch_size)
        self.data = LabelledImages(config, images, labels, device)
        self._build_model(VAE, lr)

    def wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        self.model_train = wrap(ELBOPass(self.model))

    def _labels(self, labels: torch.Tensor) -> torch.Tensor | None:
        return labels if self.config.conditional else None

    def train_step(self, rng: torch.Generator, step: int, optimise: Optimise) -> dict[str, torch.Tensor]:
        cfg = self.config
        index = self.data.draw(rng, self.batch_size)
        x = self.data.pixels(index)
        eps = torch.randn(self.batch_size, cfg.latent_dim, generator=rng).to(self.device)
        mu, logvar, x_hat = self.model_train(x, self._labels(self.data.labels[index]), eps)
        terms = elbo_terms(
            x_hat, x, mu, logvar, sigma=cfg.recon_sigma, kl_scale=kl_weight(step, cfg.beta, cfg.kl_warmup_steps),
        )
        optimise("optimizer", terms["loss"])
        return terms

    def grid_inputs(self, columns: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed (seeded) noise and labels of ``sample_grid``: num_classes rows of ``columns``.

        "cvae": every row (one per class) reuses the same noise, so columns show the conditioning.
        "vae": the rows hold distinct samples (the class is not an input).
        """
        rows = self.config.num_classes
        if self.config.conditional:
            z = sample_noise(columns, self.config.latent_dim, self.seed).repeat(rows, 1)
        else:
            z = sample_noise(rows * columns, self.config.latent_dim, self.seed)
        return z, torch.arange(rows).repeat_interleave(columns)

    def sample_grid(self, ema: nn.Module, columns: int) -> torch.Tensor:
        z, labels = self.grid_inputs(columns)
        with torch.inference_mode():
            return ema.decoder(z.to(self.device), self._labels(labels.to(self.device))).cpu()
