"""Photo restoration ("Enhance"): denoise, deblur, remove JPEG artefacts, upscale x2/x4, correct exposure and
white balance, with a network trained self-supervised on the shop's own photos.

Layers, as for the generators: ``degrade`` (the synthetic degradations) and ``config`` -> ``network`` (pure
nn.Modules) -> ``objective`` (pure loss functions) -> ``trainer`` (loop, EMA, checkpoints) and ``restorer``
(inference from a checkpoint, tiled). Not a generator kind of ``mlcore.registry``: it has no classes or
labels and makes no images from noise, so it does not fit the config/trainer/sampler contract there.

    from mlcore.restoration import RestorationConfig, Restorer, Trainer, photo_tensors

The three classes load on first use, so importing this package does not import torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "RestorationConfig": "config",
    "Trainer": "trainer",
    "Restorer": "restorer",
    "photo_tensors": "photos",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
