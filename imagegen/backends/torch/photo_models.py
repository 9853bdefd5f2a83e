"""The photo operations' models, by mlcore's registry: fitting a kind on a shop's photos (PIL images, which
its ``prepare`` turns into training data), validating it on held-out photos, loading a stored one."""
from io import BytesIO
from typing import BinaryIO

from mlcore.plots import save_loss_curves
from mlcore.registry import KindSpec, get_kind

from .. import UnusablePhotos
from .light import MLCORE_NAMES


def _spec(kind: str) -> KindSpec:
    return get_kind(MLCORE_NAMES.get(kind, kind))


def fit_photo_model(kind: str, photos: list, *, batch_size: int, seed: int, device: str, steps: int, max_seconds, callback,
                    options: dict | None = None):
    """Train photo model ``kind`` on ``photos``; returns the trainer (``save``, ``config``, ``step``, ``history``,
    ``batch_size``); ``options`` go to the kind's ``prepare``. ``UnusablePhotos`` when the photos cannot teach it (too small, no plain backdrop ...)."""
    spec = _spec(kind)
    try:
        config, data = spec.prepare(photos, **(options or {}))
    except ValueError as exc:
        raise UnusablePhotos(str(exc)) from exc
    trainer = spec.trainer(config, *data, batch_size=batch_size, seed=seed, device=device)
    trainer.fit(steps, max_seconds=max_seconds, callback=callback)
    return trainer


def validate_photo_model(kind: str, checkpoint: bytes, photos: list, seed: int) -> dict | None:
    """How much better the model makes held-out photos than leaving them untouched (``mean_gain_db``, ...);
    None for a kind that mlcore does not validate this way."""
    spec = _spec(kind)
    return None if spec.validate is None else spec.validate(checkpoint, photos, seed)


def validates(kind: str) -> bool:
    """Whether ``kind`` is validated on held-out photos (which training then keeps out)."""
    return _spec(kind).validate is not None


def load_photo_model(kind: str, fh: BinaryIO, *, device: str):
    return _spec(kind).sampler.from_checkpoint(fh, device=device)


def loss_curve(history) -> bytes:
    """A trainer's loss curves as PNG bytes."""
    buf = BytesIO()
    save_loss_curves(history, buf)
    return buf.getvalue()
