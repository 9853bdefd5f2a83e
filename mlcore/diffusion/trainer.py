"""Training loop for the "ddpm" kind: epsilon-prediction step, EMA, save/resume.

Same interface as ``mlcore.trainer.Trainer`` (what imagegen's services use).
Every random draw after construction (batch indices, flips, timesteps, noise,
null-class dropout) comes from one CPU ``torch.Generator`` whose state is
checkpointed, so a resumed run continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

import torch

from ..devices import resolve_device
from ..ema import ema_decay_at, make_ema, update_ema
from ..fitting import FitLoop
from ..objectives import sample_noise
from ..sampling import CHUNK
from ..trainer import _check_dataset
from .config import DIFFUSION_KINDS, DiffusionConfig
from .networks import UNet
from .objectives import alphas_cumprod_for, ddim_timesteps, guided_ddim_sample, loss_terms

LOSS_KEYS = ("loss",)
HISTORY_KEYS = ("step", *LOSS_KEYS)
GRID_COLUMNS = 8


def build_model(config: DiffusionConfig, seed: int) -> UNet:
    """The UNet initialised from ``seed`` on the CPU, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet(config)


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


class Trainer(FitLoop):
    """Trains a ``DiffusionConfig`` model on uint8 images (N x 3 x S x S) with long class labels (N)."""

    RESUMES = DIFFUSION_KINDS

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
        if not isinstance(config, DiffusionConfig):
            raise ValueError(f"config must be a DiffusionConfig, got {type(config).__name__}")
        _check_dataset(config, images, labels)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        self.config = config
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        # Adam refuses a mix of int and float betas, and checkpoints store a list.
        self.betas = (float(betas[0]), float(betas[1]))
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)

        self.images = images.to(self.device)
        self.labels = labels.to(self.device)
        self.alphas_cumprod = alphas_cumprod_for(config.schedule, config.timesteps)
        self.model = build_model(config, self.seed).to(self.device).train()
        # The EMA copy is what samples (sample_grid, the Sampler).
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
        terms = loss_terms(self.model, x, labels, draw["t"], draw["noise"], self.alphas_cumprod)
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

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> DiffusionConfig:
        return DiffusionConfig.from_dict(data)

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
