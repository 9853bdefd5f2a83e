"""A small CNN classifier trained on the shop's own photos, used frozen as a feature extractor.

FID and friends normally use an ImageNet Inception network. There are no
downloadable weights here, and ImageNet features say little about one shop's
product categories anyway, so the extractor is trained on the catalogue
itself; its pooled penultimate layer gives the feature vectors ("classifier
FID"). Numbers from different extractors are not comparable, which is why
every extractor carries a content hash (``version_id``) for reports to name.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .. import __version__
from ..augment import translation
from ..checkpoint import CheckpointSource, CheckpointTarget, load_checkpoint, save_checkpoint
from ..devices import resolve_device

KIND = "feature-extractor"
# Inference batch size: bounded memory for any number of images.
CHUNK = 256
# Channel widths are capped at 4x the base width: features stay 128-d by default,
# small enough for stable covariance estimates from a few hundred photos.
MAX_WIDTH_MULT = 4


def to_model_input(images: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 [0, 255] or float [-1, 1] (generator output) N x 3 x H x W -> float [-1, 1] at ``image_size``."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be N x 3 x H x W, got {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        x = images.float().div(127.5).sub(1.0)
    elif images.is_floating_point():
        x = images.float()
    else:
        raise ValueError(f"images must be uint8 or float, got {images.dtype}")
    if x.shape[-2:] != (image_size, image_size):
        # Antialiased, so a downscale does not alias fine texture into the features.
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
    return x


class FeatureNet(nn.Module):
    """conv3x3-BN-ReLU-avgpool blocks down to 4x4, global average pool, linear classifier."""

    def __init__(self, num_classes: int, image_size: int, width: int = 32) -> None:
        super().__init__()
        if image_size < 8 or image_size & (image_size - 1):
            raise ValueError(f"image_size must be a power of 2 and >= 8, got {image_size!r}")
        layers: list[nn.Module] = []
        c_in, size, i = 3, image_size, 0
        while size > 4:
            c_out = width * min(MAX_WIDTH_MULT, 2**i)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            layers.append(nn.AvgPool2d(2))
            c_in, size, i = c_out, size // 2, i + 1
        self.body = nn.Sequential(*layers)
        self.feature_dim = c_in
        self.head = nn.Linear(c_in, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled penultimate activations, N x feature_dim."""
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _content_hash(config: dict[str, Any], state: dict[str, torch.Tensor]) -> str:
    """sha256 of the config and every tensor's bytes, in key order: same weights, same id."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(key.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


class FeatureExtractor:
    """A trained ``FeatureNet``, frozen (eval mode, no grad) for features and predictions."""

    def __init__(
        self,
        model: FeatureNet,
        *,
        classes: Sequence[str],
        image_size: int,
        width: int,
        summary: dict[str, Any] | None = None,
        package_version: str = __version__,
        device: str | torch.device = "cpu",
    ) -> None:
        self.classes = list(classes)
        self.image_size = int(image_size)
        self.width = int(width)
        self.summary = dict(summary or {})
        self.package_version = package_version
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.content_hash = _content_hash(self.config(), self.model.state_dict())

    @property
    def version_id(self) -> str:
        """Short id of these exact weights, for naming the extractor in metric reports."""
        return self.content_hash[:12]

    @property
    def feature_dim(self) -> int:
        return self.model.feature_dim

    def config(self) -> dict[str, Any]:
        """Plain-data shape of the network (what ``load`` rebuilds it from)."""
        return {"classes": list(self.classes), "image_size": self.image_size, "width": self.width}

    def _batched(self, images: torch.Tensor, fn) -> torch.Tensor:
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(images), CHUNK):
                x = to_model_input(images[start : start + CHUNK], self.image_size).to(self.device)
                outputs.append(fn(x).float().cpu())
        if not outputs:
            return torch.empty(0, self.feature_dim)
        return torch.cat(outputs)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """N x feature_dim penultimate-layer features of uint8 [0, 255] or float [-1, 1] images."""
        return self._batched(images, self.model.features)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        return self._batched(images, self.model)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class ids (long, N)."""
        return self.logits(images).argmax(dim=1)

    def accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Fraction of ``images`` classified as ``labels``."""
        if len(images) == 0:
            raise ValueError("accuracy of an empty set is undefined")
        return float((self.predict(images) == labels.cpu().long()).float().mean())

    def save(self, target: CheckpointTarget) -> None:
        """Write weights, config and content hash as plain data (loadable with weights_only)."""
        save_checkpoint(
            {
                "kind": KIND,
                "config": self.config(),
                "model": self.model.state_dict(),
                "content_hash": self.content_hash,
                "summary": self.summary,
            },
            target,
        )

    @classmethod
    def load(cls, source: CheckpointSource, *, device: str | torch.device = "cpu") -> FeatureExtractor:
        """Read ``save``'s checkpoint safely (``mlcore.checkpoint``, ``weights_only=True``).

        The stored content hash is checked against the loaded weights, so a
        report's extractor id always names the weights that produced it.
        """
        ckpt = load_checkpoint(source, map_location="cpu")
        if ckpt["kind"] != KIND:
            raise ValueError(f"checkpoint holds a {ckpt['kind']!r} model, not {KIND!r}")
        config = ckpt["config"]
        if not isinstance(config, dict) or set(config) != {"classes", "image_size", "width"}:
            raise ValueError(f"bad feature-extractor config: {config!r}")
        if "model" not in ckpt:
            raise ValueError("checkpoint has no 'model' weights")
        model = FeatureNet(len(config["classes"]), int(config["image_size"]), int(config["width"]))
        model.load_state_dict(ckpt["model"])
        extractor = cls(
            model,
            classes=config["classes"],
            image_size=config["image_size"],
            width=config["width"],
            summary=ckpt.get("summary"),
            package_version=ckpt["package_version"],
            device=device,
        )
        if ckpt.get("content_hash") not in (None, extractor.content_hash):
            raise ValueError("feature-extractor weights do not match their stored content hash")
        return extractor


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Horizontal flips and small shifts: label-preserving for product photos.

    No colour jitter: colour often is what separates a shop's categories or
    variants, and FID should notice a generator getting colours wrong.
    """
    flip = torch.rand(len(x), generator=generator) < 0.5
    x = torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)
    return translation(x, generator)


def train_feature_extractor(
    images: torch.Tensor,
    labels: torch.Tensor,
    classes: Sequence[str],
    *,
    image_size: int = 64,
    width: int = 32,
    epochs: int = 15,
    batch_size: int = 32,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    device: str | torch.device = "cpu",
    augment: bool = True,
) -> FeatureExtractor:
    """Train a ``FeatureNet`` to classify ``images`` (uint8 N x 3 x S x S) into ``classes``.

    Deterministic for a seed on the CPU: init under a forked global RNG, every
    shuffle and augmentation from one seeded CPU generator.
    """
    classes = list(classes)
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be non-empty and distinct, got {classes}")
    if labels.dtype != torch.long or labels.dim() != 1 or len(labels) != len(images):
        raise ValueError(f"labels must be a long tensor of length {len(images)}")
    if len(images) == 0:
        raise ValueError("cannot train on an empty dataset")
    if int(labels.min()) < 0 or int(labels.max()) >= len(classes):
        raise ValueError(f"labels must lie in [0, {len(classes) - 1}]")
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be >= 1")
    dev = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureNet(len(classes), image_size, width)
    model = model.to(dev).train()
    # Resized once up front; the dataset is small (hundreds of photos).
    data = torch.cat([to_model_input(images[i : i + CHUNK], image_size) for i in range(0, len(images), CHUNK)])
    data, targets = data.to(dev), labels.to(dev)
    rng = torch.Generator(device="cpu").manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(data) / batch_size)
    # Cosine decay ends training at a low rate, so the frozen weights are a settled point.
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=rng).to(dev)
        total = 0.0
        for start in range(0, len(data), batch_size):
            index = order[start : start + batch_size]
            if len(index) < 2 and len(data) >= 2:
                continue  # BatchNorm cannot train on a batch of one.
            x = data[index]
            if augment:
                x = _augment(x, rng)
            loss = F.cross_entropy(model(x), targets[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(index)
        losses.append(total / len(data))
    summary = {"epochs": int(epochs), "seed": int(seed), "train_images": len(data), "final_loss": losses[-1]}
    extractor = FeatureExtractor(model, classes=classes, image_size=image_size, width=width, summary=summary, device=dev)
    extractor.summary["train_accuracy"] = extractor.accuracy(images, labels)
    return extractor
