"""Generating images for a product with the active model of its category, and attaching them."""
import logging
import uuid
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Model
from django.utils.translation import gettext as _

from ..conf import settings
from ..models import GeneratedImage, Job, ModelVersion
from . import near_copies
from .files import atomic_files, png_file
from ..jobcore.creating import create_job
from ..jobcore.errors import JobError
from ..jobcore.seeds import SEED_MAX, validate_seed
from ..jobcore.states import storing_results
from .model_registry import load_sampler, version_for
from .products import product_category, product_conditions
from .provenance import generated_image_xmp

logger = logging.getLogger(__name__)


def validate_kind(kind: str | None) -> str:
    kind = kind or settings.DEFAULT_KIND
    if kind not in settings.KINDS:
        raise ValidationError(
            {"kind": _("Unknown kind %(kind)r; choose one of: %(kinds)s.") % {"kind": kind, "kinds": ", ".join(settings.KINDS)}}
        )
    return kind


def request_generation(
    product: Model, *, count: int = 4, seed: int | None = None, kind: str | None = None, user=None, send: bool = True
) -> Job:
    """Queue a job that generates ``count`` images for ``product``; image i uses seed ``seed + i``.

    With ``send=False`` the job is only stored, for a caller that runs it itself with ``services.execute``."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= settings.MAX_IMAGES_PER_JOB:
        raise ValidationError({"count": _("Count must be from 1 to %(max)s.") % {"max": settings.MAX_IMAGES_PER_JOB}})
    seed = validate_seed(seed)
    if seed + count - 1 > SEED_MAX:
        raise ValidationError({"seed": _("Seed plus count must stay below 2**31.")})
    parameters = {"count": count, "seed": seed, "kind": validate_kind(kind)}
    return create_job(Job.Kind.GENERATE, product=product, parameters=parameters, user=user, send=send)


@dataclass
class Plan:
    """What a generate job makes: its seeds, its product's conditions and the model version that serves them."""

    job: Job
    kind: str
    seeds: list[int]
    conditions: dict
    version: ModelVersion

    @property
    def category(self) -> str:
        return self.conditions["category"]


def plan(job: Job) -> Plan | None:
    """The job's plan; None when an earlier attempt already attached its images. ``JobError`` (the job's
    own failure, with what to do about it) when its product, category or model is missing."""
    if job.product_id is None:
        raise JobError("The product of this job no longer exists.")
    if job.images.exists():
        # An earlier attempt attached its images and died before marking the job done.
        return None
    params = job.parameters
    kind, count, seed = params["kind"], int(params["count"]), int(params["seed"])
    category = product_category(job.product)
    if not category:
        raise JobError("This product has no category, and generators are trained per category.")
    version = version_for(kind, category)
    if version is None:
        raise JobError(
            f"No trained generator covers the category “{category}” yet. Select some “{category}” "
            "products in the admin and run “Train generator on selected products” first."
        )
    if load_sampler(version).config.uses_text:
        conditions = product_conditions(job.product)
    else:
        # A class-only model reads the category alone: no need to open the product's photo for its colour.
        conditions = {"category": category, "attributes": {}, "text": ""}
    return Plan(job=job, kind=kind, seeds=[seed + i for i in range(count)], conditions=conditions, version=version)


def generate_passes(sampler, seeds: list[int], conditions: list[dict], owners: list[int], batch: int) -> tuple[list, list[float], list[dict]]:
    """Images and scores for ``seeds`` (each with its own conditions), in forward passes of at most ``batch``
    images, and per image where it was made: ``{"pass": id, "pass_images": n, "pass_jobs": k}`` (``owners``
    names each image's job). Each image depends on its own seed and conditions only, so smaller passes after
    running out of memory give the same pictures."""
    images, scores, passes = [], [], []
    for start in range(0, len(seeds), batch):
        part = slice(start, start + batch)
        # Kinds that read attributes and text get each product's own; class-only kinds use the category.
        chunk = sampler.generate_each(seeds[part], conditions[part])
        images += chunk
        scores += list(sampler.score(chunk, [c["category"] for c in conditions[part]]))
        where = {"pass": uuid.uuid4().hex[:12], "pass_images": len(chunk), "pass_jobs": len(set(owners[part]))}
        passes += [where] * len(chunk)
    return images, scores, passes


def attach(plan: Plan, sampler, images: list, scores: list[float], passes: list[dict], *, attempt: int) -> None:
    """Store the job's images (with their seeds, scores and the pass that made them) and its model version,
    and mark the job done, all in one transaction and only while ``attempt`` still holds the job running:
    otherwise ``JobCancelled``, and nothing of this attempt stays (rows rolled back, files deleted)."""
    job, version, conditions = plan.job, plan.version, plan.conditions
    described = {"attributes": conditions["attributes"], "text": conditions["text"]} if sampler.config.uses_text else {}
    # A copy of a training photo is never published as a new image: it is attached as rejected, with the reason.
    copies = near_copies.check(version, images) or [None] * len(images)
    rows = []
    with atomic_files() as files:
        for image, image_seed, score, where, copy in zip(images, plan.seeds, scores, passes, copies):
            note = _review_note(score, copy)
            row = GeneratedImage(
                product=job.product,
                kind=GeneratedImage.Kind.GENERATED,
                model_version=version,
                job=job,
                seed=image_seed,
                width=image.width,
                height=image.height,
                parameters={"kind": plan.kind, "category": plan.category, **described, "batch": where, "near_copy": copy},
                quality_score=score,
                review_state=GeneratedImage.ReviewState.REJECTED if note else settings.DEFAULT_REVIEW_STATE,
                review_note=note,
            )
            files.save(row.image, "generated.png", png_file(image, generated_image_xmp(model_version=version, seed=image_seed)))
            rows.append(row)
        # The files first, then the row lock: slow storage never holds the job's row locked.
        with storing_results(job.pk, attempt, _done_message(passes)) as done:
            for row in rows:
                row.save()
            done["model_version"] = version
    logger.info("job %s: attached %d images to product %s", job.pk, len(images), job.product_id)


def _done_message(passes: list[dict]) -> str:
    shared = {p["pass_jobs"] for p in passes}
    if shared <= {1}:
        return "Done"
    return f"Done (its images shared a pass with up to {max(shared) - 1} other jobs)"


def _review_note(score: float, copy: dict | None) -> str:
    """Why an image is attached as rejected ("" when it is not)."""
    if copy is not None and copy["copy"]:
        return near_copies.rejection_note(copy)
    threshold = settings.MIN_QUALITY_SCORE
    if threshold is not None and score < threshold:
        return _("Quality score %(score).3f is below IMAGEGEN_MIN_QUALITY_SCORE %(threshold)s.") % {
            "score": score, "threshold": threshold,
        }
    return ""
