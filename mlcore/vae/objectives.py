"""The VAE objective (negative ELBO) as pure functions of tensors.

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

import torch


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
