"""Editing a product's real photos (enhance, new background ...) as jobs.

The photo is never touched: every result is a new ``GeneratedImage`` linked to its source (``source_image``
and ``parameters["source"]``), reviewed like generated images, with the IPTC provenance of an edit in
its XMP. The source is decoded under the same rules as an upload (``uploads.decode_photo``): the shop's
own photos came in through imports and the host's admin and may be CMYK, 16-bit, rotated or broken.
"""
import logging

from django.core.exceptions import ValidationError
from django.db.models import Model

from ..conf import settings
from ..models import GeneratedImage, Job, SourcePhoto, imagegen_storage
from . import masks, operations
from .model_registry import active_version, load_sampler
from .model_runner import ModelRunner
from .files import atomic_files, png_file
from ..jobcore.creating import create_job
from ..jobcore.errors import JobError
from ..jobcore.runners import Claimed, register
from ..jobcore.states import storing_results
from .products import field_at, product_model
from .provenance import edited_image_xmp
from ..signals import edited_image_stored
from .uploads import decode_photo

logger = logging.getLogger(__name__)


def request_edit(
    product: Model, operation: str, *, options: dict | None = None, source_photo: int | None = None, mask=None,
    segment=None, user=None, send: bool = True,
) -> Job:
    """Queue a job that runs ``operation`` on the product's primary photo, or on its uploaded photo
    ``source_photo`` (an id of one of the product's ``SourcePhoto`` rows). ``mask`` (an upload or bytes: white
    marks the pixels to work on) goes with operations that take one, checked and stored with the job.
    ``segment`` (a storefront segment) goes into the job's parameters: the storefront app
    (``imagegen.storefront``) links the result to it when ``edited_image_stored`` is sent."""
    op = operations.get(operation)
    if mask is not None and not op.takes_mask:
        raise ValidationError({"mask": f"{op.label} takes no mask."})
    if source_photo is not None:
        if not SourcePhoto.objects.filter(pk=source_photo, product_id=product.pk).exists():
            raise ValidationError({"source_photo": f"Product {product.pk} has no uploaded photo {source_photo}."})
        source = {"type": "photo", "id": source_photo}
    else:
        if not primary_photo_name(product):
            raise ValidationError({"source_photo": "This product has no photo to edit; upload one first."})
        source = {"type": "product"}
    # Decoded before any transaction opens; a stored mask goes again if the job is not created.
    checked = masks.read_mask(mask, masks.photo_size_of(*source_file(product, source))) if mask is not None else None
    with atomic_files() as batch:
        options = dict(options or {})
        if checked is not None:
            options["mask"] = masks.store(batch, imagegen_storage(), product.pk, checked)
        parameters = {"operation": op.name, "options": op.clean(options), "source": source}
        if segment is not None:
            parameters["segment"] = segment.pk
        return create_job(Job.Kind.EDIT, product=product, parameters=parameters, user=user, send=send)


def primary_photo_name(product: Model) -> str:
    value = getattr(product, settings.PRODUCT_IMAGE_FIELD, None)
    return getattr(value, "name", "") or ""


def primary_photo_url(product: Model) -> str | None:
    """URL of the product's primary photo, None when it has none."""
    name = primary_photo_name(product)
    return field_at(product_model(), settings.PRODUCT_IMAGE_FIELD).storage.url(name) if name else None


def source_file(product: Model, source: dict):
    """(storage, name) of the photo ``source`` names, or a JobError saying why it is gone."""
    if source.get("type") == "photo":
        photo = SourcePhoto.objects.filter(pk=source.get("id"), product_id=product.pk).first()
        if photo is None or not photo.image:
            raise JobError(f"The uploaded photo {source.get('id')} of this product no longer exists.")
        return photo.image.storage, photo.image.name
    name = primary_photo_name(product)
    if not name:
        raise JobError("This product has no photo to edit; upload one first.")
    return field_at(product_model(), settings.PRODUCT_IMAGE_FIELD).storage, name


def read_photo(storage, name: str):
    """The photo ``name`` decoded under the upload rules, or a JobError with the reason."""
    try:
        with storage.open(name, "rb") as fh:
            data = fh.read()
        photo, _ = decode_photo(data)
    except ValidationError as exc:
        raise JobError(f"The photo {name} cannot be edited: {' '.join(exc.messages)}") from exc
    except OSError as exc:
        raise JobError(f"The photo {name} cannot be read: {exc}") from exc
    return photo


def read_primary_photo(product: Model):
    return read_photo(*source_file(product, {"type": "product"}))


def source_url(image: GeneratedImage) -> str | None:
    """URL of the photo an edited image was made from (for the before/after view), None when gone."""
    source = image.parameters.get("source") if isinstance(image.parameters, dict) else None
    if not source or image.kind == GeneratedImage.Kind.GENERATED:
        return None
    try:
        storage, name = source_file(image.product, source)
    except JobError:
        return None
    # The product's photo may have been replaced since: then "before" is no longer this image's source.
    return storage.url(name) if name == image.source_image else None


class JobModels:
    """What an operation's ``load_models`` may ask for in the job: the serving version of a model kind (a scene
    set's generator with ``scene_set``) and that version loaded, (None, None) when none is active.

    ``resolved``: versions the job has already chosen, by kind (its operation's own model, which it loaded): a
    version activated meanwhile must not mix its choices with the other's model."""

    def __init__(self, resolved: dict | None = None):
        self.resolved = resolved or {}

    def active(self, kind: str, *, scene_set=None):
        version = self.version(kind, scene_set=scene_set)
        return version, (None if version is None else load_sampler(version))

    def version(self, kind: str, *, scene_set=None):
        """The serving version alone (its metrics, say), not loaded."""
        if scene_set is None and kind in self.resolved:
            return self.resolved[kind]
        return active_version(kind, scene_set=scene_set)


def prepared_options(op, options: dict, read_photo=None, models: JobModels | None = None) -> dict:
    """The stored options made ready for ``apply`` in the job: the models ``load_models`` loads, then ``prepare``."""
    return op.prepare({**options, **op.load_models(options, models or JobModels())}, read_photo or read_primary_photo)


@register
class EditRunner(ModelRunner):
    kind = Job.Kind.EDIT

    def run(self, batch: list[Claimed]) -> None:
        for claimed in batch:
            edit_photo(claimed.job, claimed.progress)


def edit_photo(job: Job, progress) -> None:
    """Apply the job's operation to its product's photo and store the result as a new image."""
    if job.product_id is None:
        raise JobError("The product of this job no longer exists.")
    if job.images.exists():
        # An earlier attempt stored its result and died before marking the job done.
        return
    op = operations.OPERATIONS.get(job.parameters.get("operation"))
    if op is None:
        raise JobError(f"Unknown operation {job.parameters.get('operation')!r}.")
    options, source = job.parameters.get("options", {}), job.parameters.get("source", {})
    storage, name = source_file(job.product, source)
    progress(5, "Reading the photo")
    photo = read_photo(storage, name)
    version, model = None, None
    if op.model_kind:
        version = active_version(op.model_kind)
        if version is None and not op.model_optional:
            raise JobError(
                f"{op.label} needs a trained {op.model_kind} model and none is active yet. Select some products "
                f"in the admin and run “{op.train_description}” first."
            )
        if version is not None:
            progress(15, f"Loading {version}")
            model = load_sampler(version)
    progress(30, f"{op.label}: {photo.width}×{photo.height}")
    prepared = prepared_options(op, options, models=JobModels({op.model_kind: version} if op.model_kind else {}))
    results = op.results(photo, prepared, model)
    progress(85, "Saving the result")
    with atomic_files() as files:
        rows = []
        for seed, result in results:
            info = result.info.get("imagegen", {})
            # A loaded model that made none of this result's pixels (a task that ran a classical tool) is not its maker.
            maker = version if info.get("model_used", True) else None
            xmp = edited_image_xmp(operation=str(op.label), details=op.describe_result(options, info), source=name,
                                   model_version=maker, other_versions=op.versions_used(prepared))
            row = GeneratedImage(
                product=job.product,
                kind=op.result_kind,
                model_version=maker,
                job=job,
                seed=seed,
                width=result.width,
                height=result.height,
                source_image=name[:255],
                parameters={"operation": op.name, "options": options, "source": source, **info},
                review_state=settings.DEFAULT_REVIEW_STATE,
            )
            files.save(row.image, "edited.png", png_file(result, xmp))
            rows.append(row)
        # A stalled attempt taken over, or a job cancelled meanwhile, keeps no result (its file goes too).
        with storing_results(job.pk, progress.attempt):
            for row in rows:
                row.save()
                # Receivers may add rows of their own, or refuse the result with a JobError (rolled back).
                edited_image_stored.send(sender=GeneratedImage, job=job, image=row)
    logger.info("job %s: %s of %s stored as image(s) %s", job.pk, op.name, name, [row.pk for row in rows])

