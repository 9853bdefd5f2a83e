"""The diffusion objective and sampler maths as pure functions of tensors (and of a noise-prediction callable),
and ``DiffusionObjective``, the epsilon-prediction step the one ``Trainer`` runs.

Forward process (Ho et al. 2020): x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps,
eps ~ N(0, I), for t = 0 .. T-1, with the "cosine" schedule of Nichol &
Dhariwal (2021) for abar_t. Pixels are in [-1, 1].

Loss: the "simple" epsilon-prediction MSE, ||eps - eps_theta(x_t, t, y)||^2
AVERAGED over every element (images, channels and pixels), so a model that
predicts eps = 0 scores 1 on unit-variance noise.

Sampling: DDIM (Song et al. 2021) with eta = 0, i.e. deterministic given x_T,
on an evenly spaced sub-sequence of the training timesteps, with classifier-free guidance
(Ho & Salimans 2021): eps = eps_null + g (eps_class - eps_null).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..sampling import CHUNK
from ..seeding import sample_noise
from ..training.labelled import LabelledImages
from ..training.objective import Objective, Optimise
from .config import DiffusionConfig
from .networks import UNet

# eps_model(x_t, t, labels) -> predicted noise; t and labels are long tensors (N,).
EpsModel = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

COSINE_OFFSET = 0.008  # s in Nichol & Dhariwal's f(t) = cos^2((t/T + s) / (1 + s) * pi/2)
MAX_BETA = 0.999  # their clipping of beta_t, which keeps the last steps finite


def cosine_alphas_cumprod(timesteps: int, s: float = COSINE_OFFSET, max_beta: float = MAX_BETA) -> torch.Tensor:
    """abar_t for t = 0 .. T-1 (float64, decreasing from ~1 to ~0) of the cosine schedule.

    beta_t = min(1 - f(t+1) / f(t), max_beta) and abar_t = prod_{i <= t} (1 - beta_i).
    """
    if timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {timesteps}")

    def f(t: float) -> float:
        return math.cos((t / timesteps + s) / (1 + s) * math.pi / 2) ** 2

    betas = torch.tensor([min(1.0 - f(t + 1) / f(t), max_beta) for t in range(timesteps)], dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def alphas_cumprod_for(schedule: str, timesteps: int) -> torch.Tensor:
    """abar_t (float64, T values) of a config's named schedule."""
    if schedule == "cosine":
        return cosine_alphas_cumprod(timesteps)
    raise ValueError(f"unknown noise schedule {schedule!r}; known: ['cosine']")


def _per_image(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.to(device=like.device, dtype=like.dtype).view(-1, *([1] * (like.dim() - 1)))


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, per image (t: long tensor N)."""
    abar = alphas_cumprod.to(t.device)[t]
    return _per_image(abar.sqrt(), x0) * x0 + _per_image((1.0 - abar).sqrt(), x0) * noise


def epsilon_mse(eps_pred: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Mean over ALL elements (batch, channels, pixels) of (eps_pred - noise)^2: a scalar."""
    return (eps_pred - noise).pow(2).mean()


def loss_terms(
    eps_model: EpsModel,
    x0: torch.Tensor,
    labels: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    alphas_cumprod: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """{"loss": epsilon_mse(eps_model(x_t, t, labels), noise)} with x_t = q_sample(x0, t, noise).

    ``t``, ``noise`` (and the null-class dropout in ``labels``) are drawn by the
    caller, so the loss is a deterministic function of its inputs.
    """
    x_t = q_sample(x0, t, noise, alphas_cumprod)
    return {"loss": epsilon_mse(eps_model(x_t, t, labels), noise)}


def guided_epsilon(
    eps_model: EpsModel,
    x: torch.Tensor,
    t: torch.Tensor,
    labels: torch.Tensor,
    null_class: int,
    guidance: float,
) -> torch.Tensor:
    """Classifier-free guidance: eps_null + guidance * (eps_class - eps_null).

    Both predictions come from ONE forward pass over the batch doubled as
    [class, null]; guidance 1 (plain conditional) and 0 (unconditional) need
    only one half and skip the other.
    """
    if guidance == 1.0:
        return eps_model(x, t, labels)
    null = torch.full_like(labels, null_class)
    if guidance == 0.0:
        return eps_model(x, t, null)
    eps_class, eps_null = eps_model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null])).chunk(2)
    return eps_null + guidance * (eps_class - eps_null)


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """``steps`` distinct training timesteps floor(i * T / steps), i = steps-1 .. 0: evenly spaced, decreasing to 0.

    As in Song et al.'s DDIM and Nichol & Dhariwal's code, sampling starts at
    T - T/steps (980 of 1000 for 50 steps), not at T-1: with the cosine schedule
    abar_{T-1} ~ 2e-9, so the x_0 predicted there is the network's error
    amplified ~20000-fold, and the first DDIM step would carry that garbage
    into every sample. Pure noise stands in for x_980 instead, whose signal
    coefficient sqrt(abar) is only ~0.03.
    """
    if not 1 <= steps <= timesteps:
        raise ValueError(f"steps must be in [1, {timesteps}], got {steps}")
    return [i * timesteps // steps for i in reversed(range(steps))]


def ddim_sample(
    eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x_T: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    timesteps: Sequence[int],
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) from x_T through ``timesteps`` (decreasing) to x_0 in [-1, 1].

    ``eps_fn(x_t, t)`` predicts the noise (t: long tensor N). At each step the
    predicted x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) is clipped to
    [-1, 1], eps is re-derived from the clipped x_0, and
    x_prev = sqrt(abar_prev) x_0 + sqrt(1 - abar_prev) eps, with abar = 1 after
    the last step (so the result is the last clipped x_0).
    """
    abar = [float(a) for a in alphas_cumprod]
    x = x_T
    x0 = x_T.clamp(-1.0, 1.0)
    for i, step in enumerate(timesteps):
        a_t = abar[step]
        a_prev = abar[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        eps = eps_fn(x, torch.full((len(x),), step, dtype=torch.long, device=x.device))
        x0 = ((x - math.sqrt(1.0 - a_t) * eps) / math.sqrt(a_t)).clamp(-1.0, 1.0)
        eps = (x - math.sqrt(a_t) * x0) / math.sqrt(1.0 - a_t)
        x = math.sqrt(a_prev) * x0 + math.sqrt(1.0 - a_prev) * eps
    return x0


def guided_ddim_sample(
    eps_model: EpsModel,
    x_T: torch.Tensor,
    labels: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    timesteps: Sequence[int],
    *,
    null_class: int,
    guidance: float,
) -> torch.Tensor:
    """``ddim_sample`` with the classifier-free guided noise prediction of ``eps_model`` for class ids ``labels``."""

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return guided_epsilon(eps_model, x, t, labels, null_class, guidance)

    return ddim_sample(eps_fn, x_T, alphas_cumprod, timesteps)


def denoising_error(
    eps_model: EpsModel,
    x0: torch.Tensor,
    labels: torch.Tensor,
    timesteps: Sequence[int],
    noise: torch.Tensor,
    alphas_cumprod: torch.Tensor,
) -> torch.Tensor:
    """Per-image epsilon MSE (mean over channels and pixels), averaged over ``timesteps``, shape (N,).

    ``noise`` holds one 3 x S x S noise image per timestep (len(timesteps) x 3 x S x S),
    the same for every image, so the result depends on the images and labels only.
    """
    errors = []
    for step, eps in zip(timesteps, noise, strict=True):
        t = torch.full((len(x0),), int(step), dtype=torch.long, device=x0.device)
        eps = eps.to(x0).expand_as(x0)
        pred = eps_model(q_sample(x0, t, eps, alphas_cumprod), t, labels)
        errors.append((pred - eps).pow(2).flatten(1).mean(dim=1))
    return torch.stack(errors).mean(dim=0)


@torch.inference_mode()
def sample_images(
    model: UNet,
    config: DiffusionConfig,
    x_T: torch.Tensor,
    labels: torch.Tensor,
    *,
    alphas_cumprod: torch.Tensor,
    steps: int | None = None,
    guidance: float | None = None,
) -> torch.Tensor:
    """DDIM samples (eta = 0, classifier-free guidance) of ``model`` from x_T (N x 3 x S x S) for class ids
    ``labels``: N x 3 x S x S in [-1, 1] on the CPU. ``steps`` and ``guidance`` default to the config's.

    Runs in chunks of ``CHUNK`` images (each through every step), so memory stays bounded; no image
    depends on the others beyond float rounding of batched kernels.
    """
    steps = config.sample_steps if steps is None else int(steps)
    guidance = config.guidance if guidance is None else float(guidance)
    timesteps = ddim_timesteps(config.timesteps, steps)
    device = next(model.parameters()).device
    chunks = [
        guided_ddim_sample(
            model, x_T[i : i + CHUNK].to(device), labels[i : i + CHUNK].to(device), alphas_cumprod, timesteps,
            null_class=config.null_class, guidance=guidance,
        ).cpu()
        for i in range(0, len(x_T), CHUNK)
    ]
    return torch.cat(chunks)


class DiffusionObjective(Objective):
    """A ``DiffusionConfig`` model on uint8 images (N x 3 x S x S) with long class labels (N): random
    horizontal flips, a random timestep and noise per image, the class replaced by the null class with
    probability ``cond_drop``. The EMA copy samples."""

    CONFIG = DiffusionConfig
    DEFAULTS = {"batch_size": 32, "betas": (0.9, 0.999), "ema_decay": 0.999}
    DISTRIBUTES = True

    def __init__(
        self, config: DiffusionConfig, images: torch.Tensor, labels: torch.Tensor, *,
        device: torch.device, seed: int, batch_size: int, lr: float = 2e-4,
    ) -> None:
        super().__init__(config, device=device, seed=seed, batch_size=batch_size)
        self.data = LabelledImages(config, images, labels, device)
        self._build_model(UNet, lr)
        self.alphas_cumprod = alphas_cumprod_for(config.schedule, config.timesteps)

    def train_step(self, rng: torch.Generator, step: int, optimise: Optimise) -> dict[str, torch.Tensor]:
        cfg, n, size = self.config, self.batch_size, self.config.image_size
        # Every draw from ``rng`` on the CPU, always in this order.
        index = self.data.draw(rng, n)
        flip = (torch.rand(n, generator=rng) < 0.5).to(self.device)
        t = torch.randint(0, cfg.timesteps, (n,), generator=rng).to(self.device)
        noise = torch.randn(n, 3, size, size, generator=rng).to(self.device)
        drop = (torch.rand(n, generator=rng) < cfg.cond_drop).to(self.device)
        x = self.data.pixels(index)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
        labels = torch.where(drop, cfg.null_class, self.data.labels[index])
        terms = loss_terms(self.model_train, x, labels, t, noise, self.alphas_cumprod)
        optimise("optimizer", terms["loss"])
        return terms

    def grid_inputs(self, columns: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed (seeded) noise and labels of ``sample_grid``: num_classes rows of ``columns``.

        Every row (one per class) reuses the same noise, so columns show the conditioning.
        ``noise`` is (rows * columns) x z_dim, the form the sampler's seeded noise has.
        """
        rows = self.config.num_classes
        z = sample_noise(columns, self.config.z_dim, self.seed).repeat(rows, 1)
        return z, torch.arange(rows).repeat_interleave(columns)

    def sample_grid(self, ema: nn.Module, columns: int) -> torch.Tensor:
        z, labels = self.grid_inputs(columns)
        size = self.config.image_size
        return sample_images(ema, self.config, z.view(-1, 3, size, size), labels, alphas_cumprod=self.alphas_cumprod)
