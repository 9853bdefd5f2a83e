"""Training loop for the "ddpm" kind: epsilon-prediction step, EMA, save/resume.

Same interface as ``mlcore.trainer.Trainer`` (what imagegen's services use).
Every random draw after construction (batch indices, flips, timesteps, noise,
null-class dropout) comes from one CPU ``torch.Generator`` whose state is
checkpointed, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import torch

from ..fitting import EMAModelLoop
from ..objectives import sample_noise
from ..sampling import CHUNK
from .config import DIFFUSION_KINDS, DiffusionConfig
from .networks import UNet
from .objectives import alphas_cumprod_for, ddim_timesteps, guided_ddim_sample, loss_terms

LOSS_KEYS = ("loss",)
HISTORY_KEYS = ("step", *LOSS_KEYS)
GRID_COLUMNS = 8


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


class Trainer(EMAModelLoop):
    """Trains a ``DiffusionConfig`` model on uint8 images (N x 3 x S x S) with long class labels (N).

    The EMA copy is what samples (sample_grid, the Sampler)."""

    RESUMES = DIFFUSION_KINDS
    DISTRIBUTES = True
    CONFIG = DiffusionConfig
    HISTORY_KEYS = HISTORY_KEYS

    def __init__(
        self,
        config: DiffusionConfig,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int = 32,
        lr: float = 2e-4,
        betas: tuple[float, float] = (0.9, 0.999),
        ema_decay: float = 0.999,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(
            config, images, labels, UNet,
            batch_size=batch_size, lr=lr, betas=betas, ema_decay=ema_decay, seed=seed, device=device,
        )
        self.alphas_cumprod = alphas_cumprod_for(config.schedule, config.timesteps)

    def _draw(self) -> dict[str, torch.Tensor]:
        """This step's random draws, all from ``self.rng`` (on the CPU), always in the same order."""
        cfg, n, size = self.config, self.batch_size, self.config.image_size
        return {
            "index": torch.randint(0, len(self.images), (n,), generator=self.rng),
            "flip": torch.rand(n, generator=self.rng) < 0.5,
            "t": torch.randint(0, cfg.timesteps, (n,), generator=self.rng),
            "noise": torch.randn(n, 3, size, size, generator=self.rng),
            "drop": torch.rand(n, generator=self.rng) < cfg.cond_drop,
        }

    def _train_step(self) -> dict[str, torch.Tensor]:
        draw = {key: value.to(self.device) for key, value in self._draw().items()}
        x = self.images[draw["index"]].float().div_(127.5).sub_(1.0)
        x = torch.where(draw["flip"][:, None, None, None], x.flip(3), x)
        labels = torch.where(draw["drop"], self.config.null_class, self.labels[draw["index"]])
        return self._optimise(loss_terms(self.model_train, x, labels, draw["t"], draw["noise"], self.alphas_cumprod))

    def grid_inputs(self, columns: int = GRID_COLUMNS) -> tuple[torch.Tensor, torch.Tensor]:
        """Fixed (trainer-seeded) noise and labels of ``sample_grid``: num_classes rows of ``columns``.

        Every row (one per class) reuses the same noise, so columns show the conditioning.
        ``noise`` is (rows * columns) x z_dim, the form the sampler's seeded noise has.
        """
        rows = self.config.num_classes
        z = sample_noise(columns, self.config.z_dim, self.seed).repeat(rows, 1)
        return z, torch.arange(rows).repeat_interleave(columns)

    def sample_grid(self, columns: int = GRID_COLUMNS) -> torch.Tensor:
        """EMA model DDIM samples in [-1, 1] on the CPU: (num_classes * columns) x 3 x S x S, one row per class."""
        z, labels = self.grid_inputs(columns)
        size = self.config.image_size
        return sample_images(
            self.model_ema, self.config, z.view(-1, 3, size, size), labels, alphas_cumprod=self.alphas_cumprod
        )
