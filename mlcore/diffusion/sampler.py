"""Generate and roughly score product images with a trained "ddpm" checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from ..checkpoint import CheckpointSource
from ..devices import resolve_device
from ..sampling import CHUNK, SamplerBase, load_ema_network
from ..seeding import sample_noise
from .config import DIFFUSION_KINDS, DiffusionConfig
from .networks import UNet
from .objective import alphas_cumprod_for, denoising_error, sample_images

# score(): the timesteps (as fractions of T) at which the denoising error is measured, the seed of the
# fixed noise used there, and k in exp(-k * error).
SCORE_FRACTIONS = (0.1, 0.3, 0.5)
SCORE_SEED = 0
SCORE_SHARPNESS = 5.0


class Sampler(SamplerBase):
    """The EMA UNet of a checkpoint, frozen for inference.

    ``sample_steps`` (DDIM steps) and ``guidance`` (classifier-free guidance
    scale) start at the checkpoint config's values and may be changed on the
    instance (or in ``from_checkpoint``); a seed gives the same image for the
    same steps and guidance.
    """

    def __init__(
        self,
        config: DiffusionConfig,
        model: UNet,
        *,
        package_version: str,
        step: int,
        device: torch.device,
        sample_steps: int | None = None,
        guidance: float | None = None,
    ) -> None:
        super().__init__(config, package_version=package_version, step=step, device=device)
        self.model = model.to(device).eval().requires_grad_(False)
        self.alphas_cumprod = alphas_cumprod_for(config.schedule, config.timesteps)
        self.sample_steps = config.sample_steps if sample_steps is None else int(sample_steps)
        self.guidance = config.guidance if guidance is None else float(guidance)

    @classmethod
    def from_checkpoint(
        cls,
        source: CheckpointSource,
        *,
        device: str | torch.device = "cpu",
        sample_steps: int | None = None,
        guidance: float | None = None,
    ) -> Sampler:
        """Load a trainer checkpoint (path, bytes or binary file object) for sampling."""
        ckpt, config, model = load_ema_network(source, DIFFUSION_KINDS, DiffusionConfig.from_dict, UNet)
        return cls(
            config, model,
            package_version=str(ckpt["package_version"]),
            step=int(ckpt.get("step", 0)),
            device=resolve_device(device),
            sample_steps=sample_steps,
            guidance=guidance,
        )

    def _forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """DDIM from x_T = ``z`` (N x z_dim, reshaped to N x 3 x S x S): N x 3 x S x S in [-1, 1] on the CPU."""
        size = self.config.image_size
        return sample_images(
            self.model, self.config, z.reshape(-1, 3, size, size), labels,
            alphas_cumprod=self.alphas_cumprod, steps=self.sample_steps, guidance=self.guidance,
        )

    @torch.inference_mode()
    def _scores_for(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        timesteps = [min(cfg.timesteps - 1, int(f * cfg.timesteps)) for f in SCORE_FRACTIONS]
        noise = sample_noise(len(timesteps), cfg.z_dim, SCORE_SEED).view(-1, 3, cfg.image_size, cfg.image_size)
        errors = torch.cat([
            denoising_error(
                self.model, x[i : i + CHUNK].to(self.device), labels[i : i + CHUNK].to(self.device),
                timesteps, noise, self.alphas_cumprod,
            ).cpu()
            for i in range(0, len(x), CHUNK)
        ])
        return torch.exp(-SCORE_SHARPNESS * errors)

    def score(self, images: list[Image.Image], class_name: str | Sequence[str] | None = None) -> list[float]:
        """A rough, UNCALIBRATED 0..1 "looks like the training photos" score per image.

        exp(-5 * e), where e is the EMA model's noise-prediction MSE (per pixel value) on the image
        noised to t = 0.1 T, 0.3 T and 0.5 T with fixed noise (the same for every call), conditioned
        on the class, averaged over those timesteps. A model that denoises the image well scores near
        1; an untrained one (eps = 0, e = 1) about 0.007. Not a probability and not comparable across
        checkpoints: compare scores only within one checkpoint. The class is ``class_name`` (one or
        one per image), else the one ``generate`` stored on the image, else the class that scores best.
        """
        if not images:
            return []
        names = self._class_names(images, class_name)
        return self._scores_by_class(self._pixels(images), names, self._scores_for)
