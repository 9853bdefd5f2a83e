"""Training the models the photo operations use on the shop's own photos (the kinds: ``photo_model_kinds``).

They are model versions like the generators' (same table, activation and checkpoint rules) but are not
generators: they are trained on photos at their own resolution, have no classes to condition on, and are
not measured with the generators' FID gate; a ``validated`` kind (restore) is gated on held-out
photos instead. Training runs as a ``train`` job whose ``kind`` is one of these.
"""
import logging
import random
import time
from io import BytesIO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from ..backends import UnusablePhotos, get_backend
from ..conf import settings
from ..models import Job, ModelVersion
from ..jobcore.creating import create_job
from ..jobcore.errors import JobError
from ..jobcore.progress import ProgressReporter
from ..jobcore.seeds import validate_seed
from ..jobcore.states import storing_results
from .files import atomic_files
from .model_registry import activate
from .photo_model_kinds import is_scene_set_model, photo_models, trainable_models
from .photo_reading import read_product_photo
from .validated_choices import describe_choices
from .products import product_photos
from .scene_sets import training_backdrops

logger = logging.getLogger(__name__)

# Photos are read at most this large: their detail per pixel is what the models learn, and a shop's
# 24-megapixel originals would fill a worker's memory.
MAX_SIDE = 768


def request_photo_model_training(
    products: QuerySet | list[int], *, kind: str, steps: int | None = None, max_minutes: float | None = None,
    batch_size: int | None = None, seed: int | None = None, user=None, send: bool = True,
) -> Job:
    """Queue a job that trains the photo model ``kind`` on the photos of ``products``."""
    kinds = photo_models()
    if kind not in kinds:
        raise ValidationError({"kind": f"Unknown photo model {kind!r}; choose one of: {', '.join(kinds)}."})
    ids = sorted(products.values_list("pk", flat=True) if isinstance(products, QuerySet) else products)
    if not ids:
        raise ValidationError({"products": "Select at least one product."})
    steps = settings.TRAIN_STEPS if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 10_000_000:
        raise ValidationError({"steps": "Steps must be a positive whole number."})
    if max_minutes is not None and not max_minutes > 0:
        raise ValidationError({"max_minutes": "The time budget must be positive."})
    # None: the kind's own default batch size (mlcore's registry), which the model version records.
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 256):
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
        image, reason = read_product_photo(photo, MAX_SIDE)
        if image is None:
            skipped.append(reason)
            continue
        photos.append(image)
        categories.append(photo.category)
    return photos, categories, skipped


# Share of the photos a model with a validation step never trains on, when enough remain to train on.
HELD_OUT_SHARE = 0.1
MIN_HELD_OUT = 2


def hold_out(photos: list, seed: int, keep: int | None = None) -> tuple[list, list]:
    """(photos to train on, photos to validate on): a seeded ~10% drawn out when at least ``keep``
    (IMAGEGEN_MIN_TRAINING_IMAGES) remain to train on, else none."""
    count = max(MIN_HELD_OUT, round(len(photos) * HELD_OUT_SHARE))
    if len(photos) - count < (settings.MIN_TRAINING_IMAGES if keep is None else keep):
        return photos, []
    held = set(random.Random(seed).sample(range(len(photos)), count))
    return [p for i, p in enumerate(photos) if i not in held], [p for i, p in enumerate(photos) if i in held]


def _activation(validation: dict | None, copies: dict | None = None, quality: dict | None = None) -> tuple[bool, str]:
    policy = settings.AUTO_ACTIVATE
    if policy in ("always", "never"):
        return policy == "always", f"IMAGEGEN_AUTO_ACTIVATE is {policy!r}"
    if copies is not None:
        rates = (f"{copies['generated_flagged']} of {copies['generated_total']} samples near copies of training "
                 f"backdrops, against {copies['held_out_flagged']} of {copies['held_out_total']} held-out backdrops "
                 f"(p = {copies['p_value']:.3g})")
        if copies["significant"]:
            return False, f"it copies its training backdrops: {rates}; train on more backdrops"
        if not quality["passes"]:
            return False, (
                f"only {quality['plausible']:.0%} of its backdrops look like the scene set's photos ({quality['measure']}; "
                f"{quality['needed']:.0%} needed); train it longer or on more photos. Until then the set's own photos "
                "are its backdrops"
            )
        return True, (f"{quality['plausible']:.0%} of its backdrops look like the scene set's photos and "
                      f"no more are near copies than real backdrops: {rates}")
    if validation is None:
        # Not a generator: there is no FID to gate on, so "if-better" activates it like "always".
        return True, "no validation for this kind, or too few photos to hold some out"
    if validation.get("tasks"):
        return True, describe_choices(validation)
    gain = validation["mean_gain_db"]
    if gain <= 0:
        return False, (
            f"on {validation['photos']} held-out photos it does not improve them (mean gain {gain:+.2f} dB over "
            "the untouched photo); train longer or on more photos"
        )
    return True, f"on {validation['photos']} held-out photos it improves them by {gain:.2f} dB on average"


def model_options(params: dict) -> dict:
    """What a kind's training data is prepared with (mlcore's ``prepare`` options), from the job's parameters."""
    if is_scene_set_model(params["kind"]):
        return {"image_size": params.get("image_size") or settings.SCENE_IMAGE_SIZE}
    return {}


def train_photo_model(job: Job, progress: ProgressReporter) -> None:
    """A training job of a photo model (``services.training.train_job`` hands it over)."""
    if job.model_version_id:
        return
    params = job.parameters
    spec = trainable_models()[params["kind"]]
    scene_set = None
    if params.get("scene_set") is not None:
        progress(1, _("Reading the scene set's backdrops"))
        scene_set, photos = training_backdrops(params["scene_set"], progress)
        categories, skipped = [], []
    else:
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

    backend = get_backend()
    held_out = []
    if backend.validates(params["kind"]):
        photos, held_out = hold_out(photos, params["seed"])
    elif scene_set is not None:
        # Backdrops it never sees: the reference rate of the near-copy test.
        photos, held_out = hold_out(photos, params["seed"], keep=settings.SCENE_MIN_PHOTOS)
    max_seconds = params["max_minutes"] * 60 if params.get("max_minutes") else None
    try:
        trainer = backend.fit_photo_model(
            params["kind"], photos, batch_size=params["batch_size"], seed=params["seed"],
            device=backend.resolve_device(settings.DEVICE), steps=params["steps"], max_seconds=max_seconds,
            callback=on_step, options=model_options(params),
        )
    except UnusablePhotos as exc:
        raise JobError(_("The photos cannot teach the %(model)s: %(reason)s") % {
            "model": str(spec.label).lower(), "reason": exc,
        }) from exc
    progress(92, "Saving the model")
    checkpoint = BytesIO()
    trainer.save(checkpoint)
    curve = backend.loss_curve(trainer.history)
    validation = copies = quality = grid = None
    if scene_set is not None:
        progress(94, _("Checking its backdrops against the scene set's photos"))
        copies, quality, grid = backend.check_scene_generator(
            checkpoint.getvalue(), photos, held_out, seed=params["seed"], percentile=settings.NEAR_COPY_PERCENTILE,
            alpha=settings.NEAR_COPY_ALPHA,
        )
    elif held_out:
        progress(94, f"Validating on {len(held_out)} held-out photos")
        validation = backend.validate_photo_model(params["kind"], checkpoint.getvalue(), held_out, params["seed"])
    activate_it, reason = _activation(validation, copies, quality)
    with atomic_files() as files:
        version = ModelVersion(
            kind=params["kind"],
            config=trainer.config.to_dict(),
            metrics={"steps": trainer.step, "seconds": round(time.monotonic() - started, 1), "skipped_photos": len(skipped),
                     "batch_size": trainer.batch_size, "validation": validation, "activation": reason,
                     **({"near_copies": copies, "quality": quality, "held_out_backdrops": len(held_out)}
                        if copies is not None else {})},
            image_count=len(photos),
            categories=sorted(set(categories)),
            product_ids=list(params["product_ids"]),
            package_version=backend.version,
            scene_set=scene_set,
        )
        files.save(version.checkpoint, "model.pt", ContentFile(checkpoint.getvalue()))
        files.save(version.loss_curve, "loss_curve.png", ContentFile(curve))
        if grid is not None:
            files.save(version.sample_grid, "sample_grid.png", ContentFile(grid))
        # A stalled attempt taken over, or a job cancelled meanwhile, registers nothing (its files go too).
        with storing_results(job.pk, progress.attempt) as done:
            version.save()
            version.name = f"{params['kind']} v{version.pk}"
            version.save(update_fields=["name"])
            if activate_it:
                activate(version)
            done["model_version"] = version
    logger.info("job %s: trained %s on %d photos (%d skipped)", job.pk, version, len(photos), len(skipped))
