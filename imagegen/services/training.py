"""Training a generator on the shop's own product photos and registering the result as a model version."""
import logging
import math
import time
from contextlib import nullcontext
from io import BytesIO
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from ..backends import get_backend
from ..conf import settings
from ..jobcore.creating import create_job
from ..jobcore.errors import JobError
from ..jobcore.progress import ProgressReporter
from ..jobcore.runners import Claimed, register
from ..jobcore.seeds import validate_seed
from ..jobcore.states import storing_results
from ..models import Job, ModelVersion
from . import held_out, photo_models
from .files import atomic_files
from .generation import validate_kind
from .memory import shrinking_batches
from .model_registry import activate
from .model_runner import ModelRunner
from .photo_model_kinds import is_photo_model
from .products import ProductPhoto, product_photos
from .training_sets import TrainingSet, load_training_set

logger = logging.getLogger(__name__)

# Samples per class in a model version's grid (one row per class).
GRID_COLUMNS = 8
# Smallest batch an out-of-memory retry of training goes down to.
MIN_BATCH = 8


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
    r1_kinds = get_backend().r1_kinds()
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
        r1_gamma = float(settings.R1_GAMMA) if kind in r1_kinds else 0.0
    elif not 0 <= r1_gamma <= 1000:
        raise ValidationError({"r1_gamma": _("The R1 penalty weight must be from 0 to 1000.")})
    elif r1_gamma > 0 and kind not in r1_kinds:
        raise ValidationError({"r1_gamma": _("The R1 penalty applies to the GAN kinds (%(kinds)s) only.") % {"kinds": ", ".join(r1_kinds)}})
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


def _steps_for(params: dict, image_count: int) -> int:
    if params.get("epochs"):
        return max(1, math.ceil(params["epochs"] * image_count / params["batch_size"]))
    return int(params["steps"])


def train(
    params: dict, photos: list[ProductPhoto], progress: ProgressReporter | None = None, checkpoint: Path | None = None
):
    """Train on ``photos`` per ``params``; returns (trainer, summary, training set). No database writes.

    With ``checkpoint`` (a file path), a checkpoint is written there every ``IMAGEGEN_TRAIN_CHECKPOINT_EVERY``
    steps and training continues from it when it exists. Under torchrun (``mlcore.distributed`` initialised)
    this process trains as one rank of a DistributedDataParallel run."""
    backend = get_backend()
    ctx = backend.distributed().active()
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
    # Distributed, each process trains on its own device (cuda:LOCAL_RANK, or the CPU).
    device = ctx.device if ctx is not None else backend.resolve_device(params.get("device") or settings.DEVICE)
    max_seconds = params["max_minutes"] * 60 if params.get("max_minutes") else None
    start = None
    if resumed is not None:
        with resumed.checkpoint.open("rb") as fh:
            start = (resumed.config, fh.read())

    def fit(batch_size: int):
        return backend.fit_generator(
            params, data, batch_size=batch_size, steps=lambda size: _steps_for({**params, "batch_size": size}, count),
            device=device, checkpoint=checkpoint, checkpoint_every=settings.TRAIN_CHECKPOINT_EVERY, resumed=start,
            # The run's last step counts from the version it resumes, also when a periodic checkpoint is further on.
            base_step=int(resumed.metrics.get("steps", 0)) if resumed is not None else 0,
            max_seconds=max_seconds, r1_every=settings.R1_EVERY, report=report, ctx=ctx,
        )

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
    return get_backend().generator_plots(trainer, GRID_COLUMNS)


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
            package_version=get_backend().version,
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
    from .evaluation import activation_decision, evaluate_after_training

    sampler = get_backend().load_generator(BytesIO(checkpoint), version.kind, device=device)
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


@register
class TrainRunner(ModelRunner):
    """Training jobs, of generators and photo models: hours, not minutes, so a queue and task limits of their own."""

    kind = Job.Kind.TRAIN
    task = "imagegen.tasks.run_training_job"

    def queue(self) -> str:
        return settings.TRAIN_QUEUE

    def time_limits(self) -> dict[str, int]:
        return {"soft_time_limit": settings.TRAIN_TASK_SOFT_TIME_LIMIT, "time_limit": settings.TRAIN_TASK_TIME_LIMIT}

    def run(self, batch: list[Claimed]) -> None:
        for claimed in batch:
            train_job(claimed.job, claimed.progress)


def train_job(job: Job, progress: ProgressReporter) -> None:
    """Train the job's model and register it as a new version (a photo model's in ``photo_models``)."""
    if job.model_version_id:
        # An earlier attempt registered its version and died before marking the job done.
        return
    params = job.parameters
    if is_photo_model(params["kind"]):
        return photo_models.train_photo_model(job, progress)
    photos = list(product_photos(params["product_ids"]))
    if not photos:
        raise JobError("None of the selected products has a photo to learn from.")
    started = time.monotonic()
    checkpoint = checkpoint_path(job)
    announce(job)
    trainer, summary, data = train(params, photos, progress, checkpoint)
    progress(92, "Saving the model")
    version = register_version(trainer, summary, data, params, job, progress, attempt=progress.attempt)
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)
    logger.info("job %s: trained %s in %.0f s (%d photos skipped)", job.pk, version, time.monotonic() - started, len(data.skipped))


# Jobs this process, as rank 0 of a distributed run, handed to the other ranks (``distributed_training``).
announced: dict[int, bool] = {}


def announce(job: Job) -> None:
    """On rank 0 of a distributed run, just before training: hand the job to the other ranks."""
    distributed = get_backend().distributed()
    ctx = distributed.active()
    if ctx is None or not ctx.is_main:
        return
    announced[job.pk] = True
    distributed.broadcast_object(ctx, {"job_id": job.pk, "parameters": job.parameters})


def checkpoint_path(job: Job) -> Path | None:
    """Where the job's periodic training checkpoint lives (None: periodic checkpoints are off).

    Named by the job's id and creation time, so a new database's job 1 never picks up an old job 1's file."""
    folder = settings.TRAIN_CHECKPOINT_DIR
    if not folder:
        return None
    return Path(folder) / f"job-{job.pk}-{job.created_at:%Y%m%dT%H%M%S%f}.pt"
