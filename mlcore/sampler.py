"""Generate (and roughly score) product images from a trained checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image
from torchvision.transforms.functional import to_pil_image

from .checkpoint import CheckpointSource, load_checkpoint
from .config import GANConfig
from .data import stack_images
from .devices import resolve_device
from .networks import Discriminator, Generator
from .objectives import sample_noise

# Generation runs in fixed-size chunks so memory stays bounded for large counts.
CHUNK = 64
# Generated images remember their class here, so score() can use it.
CLASS_INFO_KEY = "mlcore_class"


def tensor_to_images(images: torch.Tensor) -> list[Image.Image]:
    """N x 3 x S x S in [-1, 1] -> RGB PIL images."""
    pixels = images.detach().cpu().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return [to_pil_image(img) for img in pixels]


class Sampler:
    """The EMA generator (and discriminator) of a checkpoint, frozen for inference."""

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
        self.config = config
        self.classes = list(config.classes)
        self.package_version = package_version
        self.step = step
        self.device = device
        self.generator = generator.to(device).eval().requires_grad_(False)
        self.discriminator = (
            discriminator.to(device).eval().requires_grad_(False) if discriminator is not None else None
        )

    @classmethod
    def from_checkpoint(cls, source: CheckpointSource, *, device: str | torch.device = "cpu") -> Sampler:
        """Load a trainer checkpoint (path, bytes or binary file object) for sampling."""
        ckpt = load_checkpoint(source, map_location="cpu")
        if ckpt["kind"] != "cgan":
            raise ValueError(f"checkpoint holds a {ckpt['kind']!r} model, not 'cgan'")
        if "generator_ema" not in ckpt:
            raise ValueError("checkpoint has no 'generator_ema' weights to sample from")
        config = GANConfig.from_dict(ckpt["config"])
        # Initial weights are overwritten; forking keeps the caller's RNG untouched.
        with torch.random.fork_rng(devices=[]):
            generator = Generator(config)
            discriminator = Discriminator(config) if "discriminator" in ckpt else None
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

    def class_index(self, class_name: str) -> int:
        """Class id of ``class_name``; ``KeyError`` listing the known classes otherwise."""
        try:
            return self.classes.index(class_name)
        except ValueError:
            raise KeyError(f"unknown class {class_name!r}; known classes: {', '.join(self.classes)}") from None

    @torch.inference_mode()
    def generate_tensor(self, labels: Sequence[int] | torch.Tensor, seed: int) -> torch.Tensor:
        """Images for class ids ``labels`` from noise seeded by ``seed``: N x 3 x S x S in [-1, 1], CPU."""
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        if len(labels) == 0:
            raise ValueError("labels must not be empty")
        if int(labels.min()) < 0 or int(labels.max()) >= len(self.classes):
            raise ValueError(f"labels must lie in [0, {len(self.classes) - 1}]")
        return self._forward(sample_noise(len(labels), self.config.z_dim, seed), labels)

    def _forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        chunks = [
            self.generator(z[i : i + CHUNK].to(self.device), labels[i : i + CHUNK].to(self.device)).cpu()
            for i in range(0, len(labels), CHUNK)
        ]
        return torch.cat(chunks)

    def generate(self, class_name: str, count: int, seed: int) -> list[Image.Image]:
        """``count`` RGB images of ``class_name``; the same seed always gives the same images."""
        index = self.class_index(class_name)
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
        images = tensor_to_images(self.generate_tensor([index] * count, seed))
        for img in images:
            img.info[CLASS_INFO_KEY] = class_name
        return images

    @torch.inference_mode()
    def generate_seeds(self, class_name: str, seeds: Sequence[int]) -> list[Image.Image]:
        """One image of ``class_name`` per seed, in one batched pass.

        Image i is ``generate(class_name, 1, seeds[i])`` (up to float rounding of the batched kernels),
        so every stored image can be reproduced from its own seed alone.
        """
        index = self.class_index(class_name)
        if not seeds:
            raise ValueError("seeds must not be empty")
        z = torch.cat([sample_noise(1, self.config.z_dim, seed) for seed in seeds])
        images = tensor_to_images(self._forward(z, torch.full((len(seeds),), index, dtype=torch.long)))
        for img in images:
            img.info[CLASS_INFO_KEY] = class_name
        return images

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
        if isinstance(class_name, str):
            names: list[str | None] = [class_name] * len(images)
        elif class_name is not None:
            names = list(class_name)
            if len(names) != len(images):
                raise ValueError("class_name must give one class per image")
        else:
            names = [img.info.get(CLASS_INFO_KEY) for img in images]
        pixels = stack_images(images, self.config.image_size).to(self.device)
        x = pixels.float().div_(127.5).sub_(1.0)
        all_logits = self.discriminator.all_class_logits(x).cpu()
        scores = []
        for logits, name in zip(all_logits, names):
            logit = logits[self.class_index(name)] if name is not None else logits.max()
            scores.append(float(torch.sigmoid(logit)))
        return scores
