"""Draw backdrops with a trained scene generator: the EMA generator of a "scenes" checkpoint, frozen."""

from __future__ import annotations

import torch
from PIL import Image, ImageOps

from ..checkpoint import CheckpointSource
from ..devices import resolve_device
from ..sampling import CHUNK, load_ema_network, tensor_to_images
from ..seeding import sample_noise
from .config import KIND, SceneGANConfig
from .networks import Generator


class SceneGenerator:
    """New backdrops from a checkpoint's EMA generator (``generator``); ``config``, ``step`` and
    ``package_version`` as the other samplers. Seeded: the same seed gives the same backdrops."""

    def __init__(
        self, config: SceneGANConfig, generator: Generator, *, package_version: str, step: int, device: torch.device,
    ) -> None:
        self.config = config
        self.generator = generator.to(device).eval().requires_grad_(False)
        self.package_version = package_version
        self.step = step
        self.device = device

    @classmethod
    def from_checkpoint(cls, source: CheckpointSource, device: str | torch.device = "cpu") -> SceneGenerator:
        """Load a trainer checkpoint (path, bytes or binary file object; read with ``weights_only=True``);
        ``ValueError`` when it is not a "scenes" checkpoint."""
        ckpt, config, generator = load_ema_network(
            source, (KIND,), SceneGANConfig.from_dict, Generator, key="generator_ema",
        )
        return cls(
            config, generator, package_version=str(ckpt["package_version"]), step=int(ckpt.get("step", 0)),
            device=resolve_device(device),
        )

    @torch.inference_mode()
    def backdrop_tensor(self, count: int, seed: int) -> torch.Tensor:
        """``count`` backdrops as N x 3 x S x S in [-1, 1] on the CPU, from noise seeded by ``seed``. The
        generator has no batch statistics at inference, so backdrop i does not depend on ``count``."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
        z = sample_noise(count, self.config.z_dim, seed)
        return torch.cat([self.generator(chunk.to(self.device)).float().cpu() for chunk in z.split(CHUNK)])

    def backdrops(self, count: int, seed: int) -> list[Image.Image]:
        """``count`` RGB backdrops of ``image_size`` x ``image_size``; the same seed gives the same images."""
        return tensor_to_images(self.backdrop_tensor(count, seed))

    def backdrop(self, size: tuple[int, int], seed: int) -> Image.Image:
        """One backdrop of ``size`` (width, height): drawn at the native size, enlarged to cover ``size`` and
        centre-cropped (Lanczos). No blur: the composition adds the depth of field it wants."""
        width, height = size
        if isinstance(width, bool) or isinstance(height, bool) or int(width) < 1 or int(height) < 1:
            raise ValueError(f"size must be a positive (width, height), got {size!r}")
        native = self.backdrops(1, seed)[0]
        return ImageOps.fit(native, (int(width), int(height)), method=Image.Resampling.LANCZOS)
