"""Generating images for a product with the active model of its category, and attaching them."""
import logging

from django.db.models import Model

from ..conf import settings
from ..models import GeneratedImage, Job
from .files import atomic_files, png_file
from .jobs import JobError, ProgressReporter, create_job, validate_kind, validate_seed
from .memory import shrinking_batches
from .model_registry import load_sampler, version_for
from .products import product_conditions
from .provenance import generated_image_xmp

logger = logging.getLogger(__name__)


def request_generation(
    product: Model, *, count: int = 4, seed: int | None = None, kind: str | None = None, user=None, send: bool = True
) -> Job:
    """Queue a job that generates ``count`` images for ``product``; image i uses seed ``seed + i``.

    With ``send=False`` the job is only stored, for a caller that runs it itself with ``services.execute``."""
    from django.core.exceptions import ValidationError

    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= settings.MAX_IMAGES_PER_JOB:
        raise ValidationError({"count": f"Count must be from 1 to {settings.MAX_IMAGES_PER_JOB}."})
    seed = validate_seed(seed)
    if seed + count - 1 > 2**31 - 1:
        raise ValidationError({"seed": "Seed plus count must stay below 2**31."})
    parameters = {"count": count, "seed": seed, "kind": validate_kind(kind)}
    return create_job(Job.Kind.GENERATE, product=product, parameters=parameters, user=user, send=send)


def run(job: Job, progress: ProgressReporter) -> None:
    """Runner for generate jobs (called by services.jobs.execute)."""
    if job.product_id is None:
        raise JobError("The product of this job no longer exists.")
    if job.images.exists():
        # An earlier attempt attached its images and died before marking the job done.
        return
    params = job.parameters
    kind, count, seed = params["kind"], int(params["count"]), int(params["seed"])
    conditions = product_conditions(job.product)
    category = conditions["category"]
    if not category:
        raise JobError("This product has no category, and generators are trained per category.")
    version = version_for(kind, category)
    if version is None:
        raise JobError(
            f"No trained generator covers the category “{category}” yet. Select some “{category}” "
            "products in the admin and run “Train generator on selected products” first."
        )
    progress(10, f"Loading {version}")
    sampler = load_sampler(version)
    progress(30, f"Generating {count} images")
    seeds = [seed + i for i in range(count)]

    def generate(batch: int) -> tuple[list, list[float]]:
        # Each image depends on its own seed only, so smaller batches after running out of memory give
        # the same pictures.
        images, scores = [], []
        for start in range(0, count, batch):
            # Kinds that read attributes and text get the product's own; class-only kinds use the category.
            chunk = sampler.generate_for(seeds[start : start + batch], **conditions)
            images += chunk
            scores += list(sampler.score(chunk, category))
        return images, scores

    images, scores = shrinking_batches(
        generate, count, smallest=1,
        on_retry=lambda big, small, why: progress(30, f"{why} generating {big} at once; now {small} at a time"),
    )
    described = {"attributes": conditions["attributes"], "text": conditions["text"]} if sampler.config.uses_text else {}
    progress(80, "Saving images")
    threshold = settings.MIN_QUALITY_SCORE
    with atomic_files() as files:
        for image, image_seed, score in zip(images, seeds, scores):
            below = threshold is not None and score < threshold
            row = GeneratedImage(
                product=job.product,
                kind=GeneratedImage.Kind.GENERATED,
                model_version=version,
                job=job,
                seed=image_seed,
                width=image.width,
                height=image.height,
                parameters={"kind": kind, "category": category, **described},
                quality_score=score,
                review_state=GeneratedImage.ReviewState.REJECTED if below else settings.DEFAULT_REVIEW_STATE,
                review_note=f"Quality score {score:.3f} is below IMAGEGEN_MIN_QUALITY_SCORE {threshold}." if below else "",
            )
            files.save(row.image, "generated.png", png_file(image, generated_image_xmp(model_version=version, seed=image_seed)))
            row.save()
        Job.objects.filter(pk=job.pk).update(model_version=version)
    logger.info("job %s: attached %d images to product %s", job.pk, count, job.product_id)
