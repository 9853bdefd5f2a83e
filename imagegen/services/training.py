"""Training a generator on the shop's own product photos and registering the result as a model version."""
import logging
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from ..conf import settings
from ..models import Job, ModelVersion
from . import distributed_training, held_out, photo_models
from .files import atomic_files
from .jobs import (
    JobError, ProgressReporter, create_job, storing_results, validate_kind, validate_seed,
)
from .memory import shrinking_batches
from .model_registry import activate
from .products import ProductPhoto, product_photos

logger = logging.getLogger(__name__)

# Samples per class in a model version's grid (one row per class).
GRID_COLUMNS = 8
# Smallest batch an out-of-memory retry of training goes down to.
MIN_BATCH = 8


@dataclass
class TrainingSet:
    images: Any  # uint8 tensor N x 3 x S x S
    labels: Any  # long tensor N of class ids
    classes: list[str]
    skipped: list[str] = field(default_factory=list)  # "name: reason" of photos that could not be read
    attributes: list[dict] = field(default_factory=list)  # per image; colour read off the photo when missing
    texts: list[str] = field(default_factory=list)  # per image: its product's own text
    sources: list[ProductPhoto] = field(default_factory=list)  # per image: the photo it was read from
    held_out: list[ProductPhoto] = field(default_factory=list)  # selected photos kept out of training

    @property
    def categories(self) -> list[str]:
        return [self.classes[int(i)] for i in self.labels]


def training_parameters(
    *,
    kind: str | None = None,
    image_size: int | None = None,
    steps: int | None = None,
    epochs: float | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    max_minutes: float | None = None,
    resume_from: int | None = None,
    device: str | None = None,
    r1_gamma: float | None = None,
) -> dict:
    """Validated, complete parameters of a training run (defaults from settings)."""
    from mlcore.registry import R1_KINDS

    kind = validate_kind(kind)
    image_size = settings.IMAGE_SIZE if image_size is None else image_size
    if image_size not in (64, 128):
        raise ValidationError({"image_size": "Image size must be 64 or 128."})
    if steps is not None and epochs is not None:
        raise ValidationError({"steps": "Give steps or epochs, not both."})
    if steps is None and epochs is None:
        steps = settings.TRAIN_STEPS
    if steps is not None and not 1 <= steps <= 10_000_000:
        raise ValidationError({"steps": "Steps must be a positive number."})
    if epochs is not None and not 0 < epochs <= 100_000:
        raise ValidationError({"epochs": "Epochs must be a positive number."})
    batch_size = settings.TRAIN_BATCH_SIZE if batch_size is None else batch_size
    if not 1 <= batch_size <= 4096:
        raise ValidationError({"batch_size": "Batch size must be from 1 to 4096."})
    max_minutes = max_minutes if max_minutes is not None else settings.TRAIN_MAX_MINUTES
    if max_minutes is not None and max_minutes <= 0:
        raise ValidationError({"max_minutes": "The time budget must be positive."})
    if resume_from is not None and not ModelVersion.objects.filter(pk=resume_from).exists():
        raise ValidationError({"resume_from": f"There is no model version {resume_from}."})
    if r1_gamma is None:
        # The setting is for the kinds that have a discriminator on real images; the others ignore it.
        r1_gamma = float(settings.R1_GAMMA) if kind in R1_KINDS else 0.0
    elif not 0 <= r1_gamma <= 1000:
        raise ValidationError({"r1_gamma": _("The R1 penalty weight must be from 0 to 1000.")})
    elif r1_gamma > 0 and kind not in R1_KINDS:
        raise ValidationError({"r1_gamma": _("The R1 penalty applies to the GAN kinds (%(kinds)s) only.") % {"kinds": ", ".join(R1_KINDS)}})
    return {
        "kind": kind,
        "image_size": image_size,
        "steps": steps,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": validate_seed(settings.TRAIN_SEED if seed is None else seed),
        "max_minutes": max_minutes,
        "resume_from": resume_from,
        "device": device,
        "r1_gamma": float(r1_gamma),
    }


def request_training(products: QuerySet | list[int], *, user=None, send: bool = True, **options: Any) -> Job:
    """Queue a job that trains a generator on the photos of ``products``.

    With ``send=False`` the job is only stored, for a caller that runs it in-process with
    ``services.execute`` (``train_imagegen`` does, to show a progress bar)."""
    ids = sorted(products.values_list("pk", flat=True) if isinstance(products, QuerySet) else products)
    if not ids:
        raise ValidationError({"products": "Select at least one product."})
    parameters = training_parameters(**options) | {"product_ids": ids}
    return create_job(Job.Kind.TRAIN, parameters=parameters, user=user, send=send)


def load_training_set(photos: list[ProductPhoto], image_size: int, classes: list[str] | None = None) -> TrainingSet:
    """Decode the photos into one tensor (through the decoded-photo cache); unreadable ones are skipped and
    listed, not fatal."""
    import torch

    from .decoded_photos import decode_photo, decoded_photo_cache

    cache = decoded_photo_cache()
    classes = classes or sorted({photo.category for photo in photos})
    index = {name: i for i, name in enumerate(classes)}
    pictures, labels, skipped, attributes, texts, sources = [], [], [], [], [], []
    for photo in photos:
        if photo.category not in index:
            skipped.append(f"{photo.name}: category “{photo.category}” is not one the model was trained on")
            continue
        try:
            pixels, colour = decode_photo(photo, image_size, cache)
        except (OSError, ValueError) as exc:
            skipped.append(f"{photo.name}: {exc}")
            continue
        pictures.append(pixels)
        labels.append(index[photo.category])
        described = dict(photo.attributes)
        if "colour" not in described:
            described["colour"] = colour
        attributes.append(described)
        texts.append(photo.text)
        sources.append(photo)
    if cache is not None:
        cache.prune()
        logger.info("decoded photos: %d from the cache, %d decoded", cache.hits, cache.misses)
    if not pictures:
        return TrainingSet(images=None, labels=None, classes=classes, skipped=skipped)
    return TrainingSet(
        images=torch.stack(pictures),
        labels=torch.tensor(labels, dtype=torch.long),
        classes=classes,
        skipped=skipped,
        attributes=attributes,
        texts=texts,
        sources=sources,
    )


def _steps_for(params: dict, image_count: int) -> int:
    if params.get("epochs"):
        return max(1, math.ceil(params["epochs"] * image_count / params["batch_size"]))
    return int(params["steps"])


def _continue_from(checkpoint: Path | None, params: dict, data: TrainingSet, device: str):
    """A trainer continuing this job's own periodic checkpoint (an earlier attempt got that far), or None.

    A checkpoint of another batch size is from before an out-of-memory retry halved it: not this run's."""
    from mlcore.checkpoint import load_checkpoint
    from mlcore.registry import get_kind

    if checkpoint is None or not checkpoint.exists():
        return None
    saved = checkpoint.read_bytes()
    ckpt = load_checkpoint(BytesIO(saved))
    if ckpt.get("hyperparameters", {}).get("batch_size") != params["batch_size"]:
        logger.info("not continuing from %s: it trained with another batch size", checkpoint)
        return None
    trainer_class = get_kind(params["kind"]).trainer
    config = trainer_class.config_from_dict(ckpt["config"])
    logger.info("training continues from %s at step %s", checkpoint, ckpt["step"])
    return trainer_class.resume(BytesIO(saved), data.images, _condition_ids(config, data), device=device)


def _build_trainer(params: dict, data: TrainingSet, device: str, resumed: ModelVersion | None):
    from mlcore.registry import get_kind

    spec = get_kind(params["kind"])
    if resumed is not None:
        # A resumed model keeps its vocabulary: its embedding rows are indexed by it.
        config = spec.trainer.config_from_dict(resumed.config)
        with resumed.checkpoint.open("rb") as fh:
            return spec.trainer.resume(BytesIO(fh.read()), data.images, _condition_ids(config, data), device=device)
    config = spec.config.for_training(
        classes=data.classes, image_size=params["image_size"], attributes=data.attributes, texts=data.texts
    )
    penalty = {"r1_gamma": params["r1_gamma"], "r1_every": settings.R1_EVERY} if params.get("r1_gamma") else {}
    return spec.trainer(
        config, data.images, _condition_ids(config, data), batch_size=params["batch_size"], seed=params["seed"],
        device=device, **penalty,
    )


def _condition_ids(config, data: TrainingSet):
    return config.condition_ids(data.categories, data.attributes, data.texts)


def train(
    params: dict, photos: list[ProductPhoto], progress: ProgressReporter | None = None, checkpoint: Path | None = None
):
    """Train on ``photos`` per ``params``; returns (trainer, summary, training set). No database writes.

    With ``checkpoint`` (a file path), a checkpoint is written there every ``IMAGEGEN_TRAIN_CHECKPOINT_EVERY``
    steps and training continues from it when it exists. Under torchrun (``mlcore.distributed`` initialised)
    this process trains as one rank of a DistributedDataParallel run."""
    from mlcore import distributed

    ctx = distributed.active()
    report = progress or (lambda percent, message="": None)
    resumed = ModelVersion.objects.get(pk=params["resume_from"]) if params.get("resume_from") else None
    # Held-out products are never trained on: the metrics before activation and the near-copy test use them.
    photos, held = held_out.split(photos)
    report(1, f"Reading {len(photos)} photos ({len(held)} held out)")
    # A resumed model keeps its class list: its embeddings are indexed by it.
    data = load_training_set(photos, params["image_size"], resumed.categories if resumed else None)
    count = 0 if data.images is None else len(data.images)
    if held and count < settings.MIN_TRAINING_IMAGES:
        # Unreadable photos left too few to train on: train on the held-out ones too (measured on training photos).
        photos, held = photos + held, []
        data = load_training_set(photos, params["image_size"], resumed.categories if resumed else None)
        count = 0 if data.images is None else len(data.images)
    data.held_out = held
    if count < settings.MIN_TRAINING_IMAGES:
        raise JobError(
            f"Only {count} readable photos in the selection; at least {settings.MIN_TRAINING_IMAGES} are needed "
            "to train a generator. Select more products with photos."
        )
    from mlcore.devices import resolve_device

    # Distributed, each process trains on its own device (cuda:LOCAL_RANK, or the CPU).
    device = ctx.device if ctx is not None else resolve_device(params.get("device") or settings.DEVICE)
    max_seconds = params["max_minutes"] * 60 if params.get("max_minutes") else None

    periodic = {"checkpoint_every": settings.TRAIN_CHECKPOINT_EVERY, "checkpoint_path": checkpoint} if checkpoint else {}
    # The run's last step counts from the version it resumes, also when a periodic checkpoint is further on.
    base_step = int(resumed.metrics.get("steps", 0)) if resumed is not None else 0

    def fit(batch_size: int):
        run_params = {**params, "batch_size": batch_size}
        trainer = _continue_from(checkpoint, run_params, data, device)
        start_step = base_step
        if trainer is None:
            trainer = _build_trainer(run_params, data, device, resumed)
            start_step = trainer.step
        if ctx is not None:
            trainer.distribute(ctx)
        steps = max(0, start_step + _steps_for(run_params, count) - trainer.step)

        def on_step(step: int, target: int, losses: dict) -> None:
            done, total = step - start_step, target - start_step
            # Each kind reports its own loss terms (a GAN's d_loss/g_loss, a VAE's recon/kl): show what is there.
            terms = " · ".join(f"{name} {value:.3f}" for name, value in list(losses.items())[:4])
            report(5 + 85 * done / max(total, 1), f"Step {done}/{total} · {terms}")

        return trainer, trainer.fit(steps, max_seconds=max_seconds, callback=on_step, **periodic)

    # Out of memory: start again with half the batch (the model version records the size it trained
    # with), but not below MIN_BATCH, where batch statistics stop meaning much; a resumed run keeps its own.
    requested = params["batch_size"]
    # Distributed, every rank would have to shrink together: there, running out of memory fails the job.
    smallest = requested if resumed is not None or ctx is not None else min(requested, MIN_BATCH)
    trainer, summary = shrinking_batches(
        fit, requested, smallest=smallest,
        on_retry=lambda big, small, why: report(2, f"{why} at batch size {big}; starting again with {small}"),
    )
    summary["batch_size"] = trainer.batch_size
    return trainer, summary, data


def render_plots(trainer) -> dict[str, bytes]:
    """The trainer's sample grid and loss curves as PNG bytes, by file name."""
    from mlcore.plots import save_loss_curves, save_sample_grid

    grid, curve = BytesIO(), BytesIO()
    save_sample_grid(trainer.sample_grid(GRID_COLUMNS), grid, nrow=GRID_COLUMNS)
    save_loss_curves(trainer.history, curve)
    return {"sample_grid.png": grid.getvalue(), "loss_curve.png": curve.getvalue()}


def write_plots(trainer, out_dir: Path) -> list[Path]:
    """Write the sample grid and loss curves into ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in render_plots(trainer).items():
        (out_dir / name).write_bytes(data)
        paths.append(out_dir / name)
    return paths


def register_version(
    trainer, summary: dict, data: TrainingSet, params: dict, job: Job | None = None, progress: ProgressReporter | None = None,
    *, attempt: int | None = None,
) -> ModelVersion:
    """Store the checkpoint and its plots, create the model version, measure it and activate it when the
    quality gate allows (training a feature extractor first when none covers its categories).

    For a ``job`` run under ``attempt``, the job is marked done in the same transaction, and nothing is
    registered (``JobCancelled``, files deleted) unless that attempt still holds the job running."""
    from mlcore import __version__

    from .evaluation import ensure_feature_extractor

    extractor = ensure_feature_extractor(data, device=trainer.device, progress=progress)
    checkpoint = BytesIO()
    trainer.save(checkpoint)
    plots = render_plots(trainer)
    metrics = {
        "steps": trainer.step,
        "seconds": round(summary["seconds"], 1),
        "images_per_second": round(summary["images_per_second"], 1),
        "batch_size": trainer.batch_size,
        "world_size": summary.get("world_size", 1),
        "global_batch_size": summary.get("global_batch_size", trainer.batch_size),
        **{k: round(float(v), 4) for k, v in summary.get("losses", {}).items()},
        "skipped_photos": len(data.skipped),
        "held_out_photos": len(data.held_out),
        "held_out_product_ids": sorted({photo.product_id for photo in data.held_out}),
    }
    held_ids = {photo.product_id for photo in data.held_out}
    with atomic_files() as files:
        version = ModelVersion(
            kind=params["kind"],
            config=trainer.config.to_dict(),
            metrics=metrics,
            image_count=len(data.images),
            categories=data.classes,
            product_ids=[pk for pk in params.get("product_ids", []) if pk not in held_ids],
            package_version=__version__,
        )
        files.save(version.checkpoint, "model.pt", ContentFile(checkpoint.getvalue()))
        files.save(version.sample_grid, "sample_grid.png", ContentFile(plots["sample_grid.png"]))
        files.save(version.loss_curve, "loss_curve.png", ContentFile(plots["loss_curve.png"]))
        version.save()
        version.name = f"{version.kind}-{trainer.config.image_size} v{version.pk}"
        activate_it = _evaluate(version, checkpoint.getvalue(), trainer.device, data, extractor, files)
        # After the long evaluation, so the job's row is locked only for the last writes.
        with storing_results(job.pk, attempt) if job is not None else nullcontext({}) as done:
            if activate_it:
                activate(version)
            done["model_version"] = version
    return version


def _evaluate(version: ModelVersion, checkpoint: bytes, device, data: TrainingSet, extractor, files) -> bool:
    """Measure the new version and say whether the quality gate lets it be activated (the reason is kept);
    store what the near-copy check of its generated images needs, and the picture of its flagged samples."""
    from mlcore.registry import get_kind

    from .evaluation import activation_decision, evaluate_after_training

    sampler = get_kind(version.kind).sampler.from_checkpoint(BytesIO(checkpoint), device=device)
    measured = evaluate_after_training(version, sampler, data, extractor) if extractor is not None else None
    if measured is not None:
        version.metrics["evaluation"] = measured.report
        files.save(version.copy_reference, "copy_reference.pt", ContentFile(measured.reference))
        if measured.sheet is not None:
            files.save(version.near_copy_sheet, "near_copies.png", ContentFile(measured.sheet))
    activate_it, reason = activation_decision(version)
    version.metrics["activation"] = reason
    version.save(update_fields=["name", "metrics", "copy_reference", "near_copy_sheet"])
    return activate_it


def run(job: Job, progress: ProgressReporter) -> None:
    """Runner for training jobs (called by services.jobs.execute)."""
    if job.model_version_id:
        # An earlier attempt registered its version and died before marking the job done.
        return
    params = job.parameters
    if photo_models.is_photo_model(params["kind"]):
        return photo_models.run(job, progress)
    photos = list(product_photos(params["product_ids"]))
    if not photos:
        raise JobError("None of the selected products has a photo to learn from.")
    started = time.monotonic()
    checkpoint = distributed_training.checkpoint_path(job)
    distributed_training.announce(job)
    trainer, summary, data = train(params, photos, progress, checkpoint)
    progress(92, "Saving the model")
    version = register_version(trainer, summary, data, params, job, progress, attempt=progress.attempt)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    logger.info("job %s: trained %s in %.0f s (%d photos skipped)", job.pk, version, time.monotonic() - started, len(data.skipped))
