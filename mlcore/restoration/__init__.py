"""Photo restoration ("Enhance"): denoise, deblur, remove JPEG artefacts, upscale x2/x4, correct exposure and
white balance, with a network trained self-supervised on the shop's own photos.

Layers, as for the generators: ``degrade`` (the synthetic degradations) and ``config`` -> ``networks`` (pure
nn.Modules) -> ``objective`` (pure loss functions and the batches the one ``Trainer`` trains on) and
``sampler`` (``Restorer``: inference from a checkpoint, tiled); ``data`` makes the training data from PIL
photos. Enhance's named tasks (``tasks``) each have classical tools (``classical``); ``validation`` scores the
restorer, the tools and the untouched photo per task on held-out photos and chooses what each task runs
("restore" in ``mlcore.registry``); ``detect`` (with ``noise_level``) measures which tasks a photo needs.

    from mlcore.restoration import RestorationConfig, Restorer, Trainer, photo_tensors

The names load on first use, so importing this package does not import torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "RestorationConfig": ".config",
    "Trainer": "..training.trainer",
    "Restorer": ".sampler",
    "photo_tensors": "..photos",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
