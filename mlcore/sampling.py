"""What every sampler shares: class names, seeded noise, batched decoding into PIL images.

A sampler subclass sets ``config`` (with ``z_dim`` and ``classes``), ``classes`` and ``device`` and
implements ``_forward(z, labels) -> N x 3 x S x S in [-1, 1]`` on the CPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from PIL import Image
from torchvision.transforms.functional import to_pil_image

from .checkpoint import load_checkpoint
from .data import stack_images
from .seeding import build_seeded, sample_noise
from .inference import DEFAULT_CHUNK, FastPath, InferenceOptions

# Generation runs in fixed-size chunks so memory stays bounded for large counts.
CHUNK = DEFAULT_CHUNK
# Generated images remember their class here, so score() can use it.
CLASS_INFO_KEY = "mlcore_class"


def tensor_to_images(images: torch.Tensor) -> list[Image.Image]:
    """N x 3 x S x S in [-1, 1] -> RGB PIL images."""
    pixels = images.detach().cpu().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)
    return [to_pil_image(img) for img in pixels]


def tag_class(images: list[Image.Image], class_name: str) -> list[Image.Image]:
    for img in images:
        img.info[CLASS_INFO_KEY] = class_name
    return images


def load_ema_network(source, kinds: Sequence[str], config_from_dict, network, key: str = "model_ema"):
    """(checkpoint, config, network with the checkpoint's EMA weights) of a one-network kind's checkpoint.

    ``ValueError`` when the checkpoint holds another kind or no EMA weights."""
    ckpt = load_checkpoint(source, map_location="cpu")
    if ckpt["kind"] not in kinds:
        raise ValueError(f"checkpoint holds a {ckpt['kind']!r} model, not one of {tuple(kinds)}")
    if key not in ckpt:
        raise ValueError(f"checkpoint has no {key!r} weights to sample from")
    config = config_from_dict(ckpt["config"])
    # The initial weights are overwritten; building seeded keeps the caller's RNG untouched.
    model = build_seeded(lambda: network(config), 0)
    model.load_state_dict(ckpt[key])
    return ckpt, config, model


class FrozenNetwork:
    """Inference with the EMA network of a photo-model checkpoint (restoration, inpainting, brand look):
    a subclass names the checkpoint ``KIND``, its ``CONFIG`` class and its ``NETWORK`` class."""

    KIND: str
    CONFIG: type
    NETWORK: type

    def __init__(self, config, model: torch.nn.Module, *, package_version: str, step: int, device: torch.device) -> None:
        self.config = config
        self.model = model.to(device).eval().requires_grad_(False)
        self.package_version = package_version
        self.step = step
        self.device = device

    @classmethod
    def from_checkpoint(cls, source, device: str | torch.device = "cpu"):
        """Load a trainer checkpoint (path, bytes or binary file object; read with ``weights_only=True``)."""
        from .devices import resolve_device

        ckpt, config, model = load_ema_network(source, (cls.KIND,), cls.CONFIG.from_dict, cls.NETWORK)
        return cls(
            config, model, package_version=str(ckpt["package_version"]), step=int(ckpt.get("step", 0)),
            device=resolve_device(device),
        )


class SamplerBase:
    classes: list[str]

    def __init__(self, config, *, package_version: str, step: int, device: torch.device) -> None:
        self.config = config
        self.classes = list(config.classes)
        self.package_version = package_version
        self.step = step
        self.device = device
        self.fast = FastPath(device)

    def set_inference(self, options: InferenceOptions) -> None:
        """Run the generating network with ``options`` from now on (bf16, channels-last, compile on CUDA;
        the CPU stays fp32 unless channels-last or compile are asked for)."""
        self.fast = FastPath(self.device, options)

    def _pixels(self, images: list[Image.Image]) -> torch.Tensor:
        """Images fitted into the model's square like training photos, as floats in [-1, 1]."""
        return stack_images(images, self.config.image_size).float().div_(127.5).sub_(1.0)

    def _scores_by_class(self, x: torch.Tensor, names: list[str | None], scores_for) -> list[float]:
        """``scores_for(x, class ids)`` per image: with its class where known, else its best class."""
        scores = torch.empty(len(x))
        known = [i for i, n in enumerate(names) if n is not None]
        if known:
            labels = torch.tensor([self.class_index(names[i]) for i in known], dtype=torch.long)
            scores[known] = scores_for(x[known], labels)
        unknown = [i for i, n in enumerate(names) if n is None]
        if unknown:
            per_class = torch.stack([
                scores_for(x[unknown], torch.full((len(unknown),), c, dtype=torch.long))
                for c in range(len(self.classes))
            ])
            scores[unknown] = per_class.max(dim=0).values
        return [float(s) for s in scores]

    def _forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def class_index(self, class_name: str) -> int:
        """Class id of ``class_name``; ``KeyError`` listing the known classes otherwise."""
        try:
            return self.classes.index(class_name)
        except ValueError:
            raise KeyError(f"unknown class {class_name!r}; known classes: {', '.join(self.classes)}") from None

    def _class_names(self, images: list[Image.Image], class_name: str | Sequence[str] | None) -> list[str | None]:
        """One class name (or None: unknown) per image: ``class_name`` for all, one per image, or else the
        class ``generate`` stored on the image. Names are checked against the trained classes."""
        if isinstance(class_name, str):
            names: list[str | None] = [class_name] * len(images)
        elif class_name is not None:
            names = list(class_name)
            if len(names) != len(images):
                raise ValueError("class_name must give one class per image")
        else:
            names = [img.info.get(CLASS_INFO_KEY) for img in images]
        for name in names:
            if name is not None:
                self.class_index(name)
        return names

    @torch.inference_mode()
    def generate_tensor(self, labels: Sequence[int] | torch.Tensor, seed: int) -> torch.Tensor:
        """Images for class ids ``labels`` from noise seeded by ``seed``: N x 3 x S x S in [-1, 1], CPU."""
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        if len(labels) == 0:
            raise ValueError("labels must not be empty")
        if int(labels.min()) < 0 or int(labels.max()) >= len(self.classes):
            raise ValueError(f"labels must lie in [0, {len(self.classes) - 1}]")
        return self._forward(sample_noise(len(labels), self.config.z_dim, seed), labels)

    def generate(self, class_name: str, count: int, seed: int) -> list[Image.Image]:
        """``count`` RGB images of ``class_name``; the same seed always gives the same images."""
        index = self.class_index(class_name)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be an int >= 1, got {count!r}")
        return tag_class(tensor_to_images(self.generate_tensor([index] * count, seed)), class_name)

    def generate_for(
        self,
        seeds: Sequence[int],
        *,
        category: str | None = None,
        attributes: Mapping[str, str] | None = None,
        text: str | None = None,
    ) -> list[Image.Image]:
        """One image per seed for a product described by its category, attributes and text, in one pass.

        What the model does not condition on is ignored (class-only kinds read the category alone and
        need it). Image i is ``generate_for([seeds[i]], ...)`` up to float rounding of batched kernels,
        so every stored image can be reproduced from its own seed alone.
        """
        if not seeds:
            raise ValueError("seeds must not be empty")
        description = {"category": category, "attributes": attributes, "text": text}
        return self.generate_each(seeds, [description] * len(seeds))

    @torch.inference_mode()
    def generate_each(self, seeds: Sequence[int], conditions: Sequence[Mapping]) -> list[Image.Image]:
        """One image per (seed, condition) pair in one batched pass, where each condition is a mapping with
        ``category``, ``attributes`` and ``text`` (any may be missing), so images of different products
        share a pass. Image i equals ``generate_for([seeds[i]], **conditions[i])`` up to float rounding of
        batched kernels."""
        if not seeds:
            raise ValueError("seeds must not be empty")
        if len(conditions) != len(seeds):
            raise ValueError("conditions must give one description per seed")
        categories = [c.get("category") for c in conditions]
        ids = self.config.condition_ids(
            categories, [dict(c.get("attributes") or {}) for c in conditions], [c.get("text") or "" for c in conditions]
        )
        z = torch.cat([sample_noise(1, self.config.z_dim, seed) for seed in seeds])
        images = tensor_to_images(self._forward(z, ids))
        for image, category in zip(images, categories):
            if category is not None:
                image.info[CLASS_INFO_KEY] = category
        return images

    def generate_seeds(self, class_name: str, seeds: Sequence[int]) -> list[Image.Image]:
        """One image of ``class_name`` per seed (``generate_for`` with the category alone)."""
        self.class_index(class_name)
        return self.generate_for(seeds, category=class_name)
