"""Repair (inpainting): fill a region the shop marks as damaged with what the surrounding photo suggests, using
a network trained on the shop's own photos with random masks (no pretrained weights).

Layers, as in ``mlcore.restoration``: ``masks`` (random training masks) and ``config`` -> ``networks`` (a pure
nn.Module) -> ``objective`` (pure loss functions and the batches the one ``Trainer`` trains on) and
``sampler`` (``Inpainter``: inference from a checkpoint on a crop around the mask); ``data`` makes the
training data from PIL photos ("inpaint" in ``mlcore.registry``). Expand grows a photo's canvas
(``margins``: the geometry, plain Python; ``outpaint``: the fill); ``classical`` holds the OpenCV and padding
fills both are measured against, and ``validation`` chooses per task (small holes, large holes, margins) what
runs, on held-out photos.

Public API::

    from mlcore.inpainting import InpaintConfig, Trainer, Inpainter, random_mask, MASK_SIZES

    InpaintConfig(width=32, levels=3, dilations=(2, 4, 8, 1), crop_size=128, hole_weight=6.0)
    random_mask(generator, height, width, size="small" | "large") -> bool H x W tensor
    Trainer(config, photos, *, batch_size=8, lr=5e-4, ema_decay=0.999, seed=0, device="cpu")
        .fit(steps, max_seconds=...) / .save(target) / Trainer.resume(source, photos)
    Inpainter.from_checkpoint(source, device="cpu").repair(image, mask) -> PIL.Image

``photos`` are uint8 3 x H x W tensors of any sizes (``mlcore.photos.photo_tensors`` makes them from PIL
images). There is no automatic defect detection: telling a scratch or a speck of dust from a pattern on the
garment is not reliable without labelled defects, so the shop always marks the region.

The classes load on first use, so importing this package does not import torch.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "InpaintConfig": ".config",
    "Trainer": "..training.trainer",
    "Inpainter": ".sampler",
    "random_mask": ".masks",
    "MASK_SIZES": ".masks",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
