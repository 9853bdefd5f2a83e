"""The models the photo operations use, trained on the shop's own photos: which kinds exist, how each is
trained from a selection of products, and how a stored version is loaded.

They are model versions like the generators' (same table, activation and checkpoint rules) but are not
generators: they are trained on photos at their own resolution, have no classes to condition on, and are
not measured with the generators' FID gate; a kind with a ``validate`` step (restore) is gated on held-out
photos instead. Training runs as a ``train`` job whose ``kind`` is one of these.
"""
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from io import BytesIO
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models import QuerySet

from ..conf import settings
from ..models import Job, ModelVersion
from .files import atomic_files
from .jobs import JobError, ProgressReporter, create_job, storing_results, validate_seed
from .model_registry import activate
from .products import product_photos
from .uploads import decode_photo

logger = logging.getLogger(__name__)

# Photos are read at most this large: their detail per pixel is what the models learn, and a shop's
# 24-megapixel originals would fill a worker's memory.
MAX_SIDE = 768


@dataclass(frozen=True)
class PhotoModel:
    label: str
    loader: str  # "module:Class" with from_checkpoint(source, device=...)
    fit: Callable[..., Any]  # (photos, *, batch_size, seed, device, steps, max_seconds, callback) -> trainer
    batch_size: int
    # (checkpoint bytes, held-out photos, seed) -> {"mean_gain_db": ..., ...}: how much better the model makes
    # photos it never saw than leaving them untouched. With it, photos are held out of training and, under
    # IMAGEGEN_AUTO_ACTIVATE="if-better", a model with no positive gain is not activated.
    validate: Callable[[bytes, list, int], dict] | None = None


def _crop_fitted(config_class, photos):
    """The default config with crops as large as its default, or as the shorter side of the median photo
    when the catalogue's photos are small (photos shorter than the crop are then left out)."""
    default = config_class()
    step = max(default.alignment, 4)
    median_side = sorted(min(photo.size) for photo in photos)[len(photos) // 2]
    return config_class(crop_size=max(32, min(default.crop_size, median_side // step * step)))


def _fit_restore(photos, *, batch_size, seed, device, steps, max_seconds, callback):
    from mlcore.restoration import RestorationConfig, Trainer, photo_tensors

    config = _crop_fitted(RestorationConfig, photos)
    tensors = photo_tensors(photos, max_side=MAX_SIDE, min_side=config.crop_size)
    if not tensors:
        raise JobError(f"No photo is at least {config.crop_size} pixels on its shorter side; the model learns from crops that size.")
    trainer = Trainer(config, tensors, batch_size=batch_size, seed=seed, device=device)
    trainer.fit(steps, max_seconds=max_seconds, callback=callback)
    return trainer


def _validate_restore(checkpoint: bytes, photos, seed: int) -> dict:
    from mlcore.restoration import Restorer, photo_tensors
    from mlcore.restoration.degrade import to_float
    from mlcore.restoration.validation import validate

    restorer = Restorer.from_checkpoint(BytesIO(checkpoint))
    return validate(restorer, [to_float(t) for t in photo_tensors(photos, max_side=MAX_SIDE)], seed=seed)


def _fit_segment(photos, *, batch_size, seed, device, steps, max_seconds, callback):
    from mlcore.background import SegmenterConfig, Trainer, training_data

    config = SegmenterConfig()
    try:
        # Cut-outs from the photos on plain backdrops, pasted on generated and real backdrops.
        data = training_data(photos, config.image_size)
    except ValueError as exc:
        raise JobError(f"The photos cannot teach the cut-out model: {exc}") from exc
    trainer = Trainer(config, data.cutouts, data.backdrops, batch_size=batch_size, seed=seed, device=device)
    trainer.fit(steps, max_seconds=max_seconds, callback=callback)
    return trainer


def _fit_brandlook(photos, *, batch_size, seed, device, steps, max_seconds, callback):
    from mlcore.brandlook.config import BrandLookConfig
    from mlcore.brandlook.trainer import Trainer
    from mlcore.data import stack_images

    config = BrandLookConfig()
    trainer = Trainer(config, stack_images(photos, config.train_size), batch_size=batch_size, seed=seed, device=device)
    trainer.fit(steps, max_seconds=max_seconds, callback=callback)
    return trainer


def _fit_inpaint(photos, *, batch_size, seed, device, steps, max_seconds, callback):
    from mlcore.inpainting import InpaintConfig, Trainer
    from mlcore.restoration import photo_tensors

    config = _crop_fitted(InpaintConfig, photos)
    tensors = photo_tensors(photos, max_side=MAX_SIDE, min_side=config.crop_size)
    trainer = Trainer(config, tensors, batch_size=batch_size, seed=seed, device=device)
    trainer.fit(steps, max_seconds=max_seconds, callback=callback)
    return trainer


PHOTO_MODELS: dict[str, PhotoModel] = {
    "restore": PhotoModel(
        "Enhancement (restoration) model", "mlcore.restoration:Restorer", _fit_restore, 8, validate=_validate_restore
    ),
    "inpaint": PhotoModel("Repair (inpainting) model", "mlcore.inpainting:Inpainter", _fit_inpaint, 8),
    "segment": PhotoModel("Background cut-out model", "mlcore.background:Segmenter", _fit_segment, 16),
    "brandlook": PhotoModel("Brand look model", "mlcore.brandlook.sampler:BrandLook", _fit_brandlook, 16),
}


def is_photo_model(kind: str) -> bool:
    return kind in PHOTO_MODELS


def loader(kind: str):
    """The class whose ``from_checkpoint`` loads a version of ``kind``."""
    module, _, name = PHOTO_MODELS[kind].loader.partition(":")
    return getattr(import_module(module), name)


def request_photo_model_training(
    products: QuerySet | list[int], *, kind: str, steps: int | None = None, max_minutes: float | None = None,
    batch_size: int | None = None, seed: int | None = None, user=None, send: bool = True,
) -> Job:
    """Queue a job that trains the photo model ``kind`` on the photos of ``products``."""
    if kind not in PHOTO_MODELS:
        raise ValidationError({"kind": f"Unknown photo model {kind!r}; choose one of: {', '.join(PHOTO_MODELS)}."})
    ids = sorted(products.values_list("pk", flat=True) if isinstance(products, QuerySet) else products)
    if not ids:
        raise ValidationError({"products": "Select at least one product."})
    steps = settings.TRAIN_STEPS if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 10_000_000:
        raise ValidationError({"steps": "Steps must be a positive whole number."})
    if max_minutes is not None and not max_minutes > 0:
        raise ValidationError({"max_minutes": "The time budget must be positive."})
    batch_size = PHOTO_MODELS[kind].batch_size if batch_size is None else batch_size
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 256:
        raise ValidationError({"batch_size": "Batch size must be from 1 to 256."})
    parameters = {
        "kind": kind, "steps": steps, "max_minutes": max_minutes, "batch_size": batch_size,
        "seed": validate_seed(settings.TRAIN_SEED if seed is None else seed), "product_ids": ids,
    }
    return create_job(Job.Kind.TRAIN, parameters=parameters, user=user, send=send)


def read_photos(product_ids: list[int]) -> tuple[list, list[str], list[str]]:
    """(decoded photos, their categories, "name: reason" of the unreadable ones), under the upload rules."""
    photos, categories, skipped = [], [], []
    for photo in product_photos(product_ids):
        try:
            with photo.open() as fh:
                image, _ = decode_photo(fh.read())
        except ValidationError as exc:
            skipped.append(f"{photo.name}: {' '.join(exc.messages)}")
            continue
        except OSError as exc:
            skipped.append(f"{photo.name}: {exc}")
            continue
        if max(image.size) > MAX_SIDE:
            image.thumbnail((MAX_SIDE, MAX_SIDE))
        photos.append(image)
        categories.append(photo.category)
    return photos, categories, skipped


# Share of the photos a model with a validation step never trains on, when enough remain to train on.
HELD_OUT_SHARE = 0.1
MIN_HELD_OUT = 2


def hold_out(photos: list, seed: int) -> tuple[list, list]:
    """(photos to train on, photos to validate on): a seeded ~10% drawn out when at least
    IMAGEGEN_MIN_TRAINING_IMAGES remain to train on, else none."""
    count = max(MIN_HELD_OUT, round(len(photos) * HELD_OUT_SHARE))
    if len(photos) - count < settings.MIN_TRAINING_IMAGES:
        return photos, []
    held = set(random.Random(seed).sample(range(len(photos)), count))
    return [p for i, p in enumerate(photos) if i not in held], [p for i, p in enumerate(photos) if i in held]


def _activation(validation: dict | None) -> tuple[bool, str]:
    policy = settings.AUTO_ACTIVATE
    if policy in ("always", "never"):
        return policy == "always", f"IMAGEGEN_AUTO_ACTIVATE is {policy!r}"
    if validation is None:
        # Not a generator: there is no FID to gate on, so "if-better" activates it like "always".
        return True, "no validation for this kind, or too few photos to hold some out"
    gain = validation["mean_gain_db"]
    if gain <= 0:
        return False, (
            f"on {validation['photos']} held-out photos it does not improve them (mean gain {gain:+.2f} dB over "
            "the untouched photo); train longer or on more photos"
        )
    return True, f"on {validation['photos']} held-out photos it improves them by {gain:.2f} dB on average"


def run(job: Job, progress: ProgressReporter) -> None:
    """Runner for training jobs of a photo model (``services.training.run`` hands them over)."""
    from mlcore import __version__
    from mlcore.devices import resolve_device
    from mlcore.plots import save_loss_curves

    if job.model_version_id:
        return
    params = job.parameters
    spec = PHOTO_MODELS[params["kind"]]
    progress(1, "Reading the photos")
    photos, categories, skipped = read_photos(params["product_ids"])
    if len(photos) < settings.MIN_TRAINING_IMAGES:
        raise JobError(
            f"Only {len(photos)} readable photos in the selection; at least {settings.MIN_TRAINING_IMAGES} are needed "
            f"to train the {spec.label.lower()}. Select more products with photos."
        )
    started = time.monotonic()

    def on_step(step: int, target: int, losses: dict) -> None:
        terms = " · ".join(f"{name} {value:.3f}" for name, value in list(losses.items())[:3])
        progress(5 + 85 * step / max(target, 1), f"Step {step}/{target} · {terms}")

    held_out = []
    if spec.validate is not None:
        photos, held_out = hold_out(photos, params["seed"])
    max_seconds = params["max_minutes"] * 60 if params.get("max_minutes") else None
    trainer = spec.fit(
        photos, batch_size=params["batch_size"], seed=params["seed"], device=resolve_device(settings.DEVICE),
        steps=params["steps"], max_seconds=max_seconds, callback=on_step,
    )
    progress(92, "Saving the model")
    checkpoint, curve = BytesIO(), BytesIO()
    trainer.save(checkpoint)
    save_loss_curves(trainer.history, curve)
    validation = None
    if held_out:
        progress(94, f"Validating on {len(held_out)} held-out photos")
        validation = spec.validate(checkpoint.getvalue(), held_out, params["seed"])
    activate_it, reason = _activation(validation)
    with atomic_files() as files:
        version = ModelVersion(
            kind=params["kind"],
            config=trainer.config.to_dict(),
            metrics={"steps": trainer.step, "seconds": round(time.monotonic() - started, 1), "skipped_photos": len(skipped),
                     "batch_size": trainer.batch_size, "validation": validation, "activation": reason},
            image_count=len(photos),
            categories=sorted(set(categories)),
            product_ids=list(params["product_ids"]),
            package_version=__version__,
        )
        files.save(version.checkpoint, "model.pt", ContentFile(checkpoint.getvalue()))
        files.save(version.loss_curve, "loss_curve.png", ContentFile(curve.getvalue()))
        # A stalled attempt taken over, or a job cancelled meanwhile, registers nothing (its files go too).
        with storing_results(job.pk, progress.attempt) as done:
            version.save()
            version.name = f"{params['kind']} v{version.pk}"
            version.save(update_fields=["name"])
            if activate_it:
                activate(version)
            done["model_version"] = version
    logger.info("job %s: trained %s on %d photos (%d skipped)", job.pk, version, len(photos), len(skipped))
