"""Generate (and roughly score) product images from a trained checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from ..checkpoint import CheckpointSource, load_checkpoint
from .config import GANConfig
from ..devices import resolve_device
from .networks import Discriminator, Generator
from ..sampling import SamplerBase, tensor_to_images

__all__ = ["Sampler", "tensor_to_images"]


class Sampler(SamplerBase):
    """The EMA generator (and discriminator) of a checkpoint, frozen for inference."""

    KIND = "cgan"
    CONFIG = GANConfig
    GENERATOR = Generator
    DISCRIMINATOR = Discriminator

    def __init__(
        self,
        config: GANConfig,
        generator: Generator,
        discriminator: Discriminator | None,
        *,
        package_version: str,
        step: int,
        device: torch.device,
    ) -> None:
        super().__init__(config, package_version=package_version, step=step, device=device)
        self.generator = generator.to(device).eval().requires_grad_(False)
        self.discriminator = (
            discriminator.to(device).eval().requires_grad_(False) if discriminator is not None else None
        )

    @classmethod
    def from_checkpoint(cls, source: CheckpointSource, *, device: str | torch.device = "cpu") -> Sampler:
        """Load a trainer checkpoint (path, bytes or binary file object) for sampling."""
        ckpt = load_checkpoint(source, map_location="cpu")
        if ckpt["kind"] != cls.KIND:
            raise ValueError(f"checkpoint holds a {ckpt['kind']!r} model, not {cls.KIND!r}")
        if "generator_ema" not in ckpt:
            raise ValueError("checkpoint has no 'generator_ema' weights to sample from")
        config = cls.CONFIG.from_dict(ckpt["config"])
        # Initial weights are overwritten; forking keeps the caller's RNG untouched.
        with torch.random.fork_rng(devices=[]):
            generator = cls.GENERATOR(config)
            discriminator = cls.DISCRIMINATOR(config) if "discriminator" in ckpt else None
        generator.load_state_dict(ckpt["generator_ema"])
        if discriminator is not None:
            discriminator.load_state_dict(ckpt["discriminator"])
        return cls(
            config,
            generator,
            discriminator,
            package_version=str(ckpt["package_version"]),
            step=int(ckpt.get("step", 0)),
            device=resolve_device(device),
        )

    def _forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.fast.run(self.generator, z, labels)

    @torch.inference_mode()
    def score(
        self, images: list[Image.Image], class_name: str | Sequence[str] | None = None
    ) -> list[float]:
        """Sigmoid of the discriminator's logit per image, a rough 0..1 realness score.

        Uncalibrated: a GAN discriminator is not a probability model, and its
        scale drifts during training, so compare scores only within one
        checkpoint. The class is ``class_name`` (one for all, or one per image);
        else the class ``generate`` stored on the image; else the class the
        discriminator finds most plausible.
        """
        if self.discriminator is None:
            raise ValueError("this checkpoint has no discriminator to score with")
        if not images:
            return []
        names = self._class_names(images, class_name)
        x = self._pixels(images).to(self.device)
        all_logits = self.discriminator.all_class_logits(x).cpu()
        scores = []
        for logits, name in zip(all_logits, names):
            logit = logits[self.class_index(name)] if name is not None else logits.max()
            scores.append(float(torch.sigmoid(logit)))
        return scores
