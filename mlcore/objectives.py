"""GAN objectives as pure functions of discriminator logits, plus noise sampling.

Every loss takes raw logits (never probabilities) so the softplus forms stay
numerically stable: softplus(-x) == -log(sigmoid(x)) without the underflow.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


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


def sample_noise(count: int, z_dim: int, seed: int) -> torch.Tensor:
    """Standard normal noise, count x z_dim, drawn on a CPU generator.

    Drawing on the CPU (then moving it, if needed) makes a seed mean the same
    noise on every device; CUDA generators produce different streams.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    return torch.randn(count, z_dim, generator=generator)
