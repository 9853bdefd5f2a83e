"""Scene sets: the named kinds of scene a shop puts its products in, their backdrops, and training their
scene generators.

A set's backdrops come from one of three sources (``SceneSet.Source``): uploaded scene photos (under the
same rules as product photos, ``uploads``), the shop's own product photos with the product cut out and the
hole filled (made in the training job, kept as ``ScenePhoto`` rows so staff can see what the generator
learns from), or the studio sweep, which is drawn and needs no training. A generator is a ``ModelVersion``
of kind "scenes" linked to its set; activating one retires only that set's other versions.
"""
import logging

from django.core.exceptions import ValidationError
from django.db.models import Model
from django.utils.translation import gettext as _, ngettext

from ..backends import get_backend
from ..conf import settings
from ..jobcore.creating import create_job
from ..jobcore.errors import JobError
from ..jobcore.seeds import validate_seed
from ..models import Job, ScenePhoto, SceneSet
from . import files, uploads
from .model_registry import active_model, active_version
from .photo_reading import read_product_photo
from .products import product_photos

logger = logging.getLogger(__name__)

# The model kind of scene generators (mlcore's registry names it the same).
SCENE_KIND = "scenes"
# Backdrops are made from product photos at most this large: a generator learns them at 256 px.
BACKDROP_MAX_SIDE = 768


def create_scene_set(*, name: str, source: str = SceneSet.Source.UPLOADED, colour: str = "#ececec",
                     product_ids: list[int] | None = None, user=None) -> SceneSet:
    """A new scene set (``full_clean`` gives the field errors: a taken name, an unknown source)."""
    scene_set = SceneSet(name=name, source=source, colour=(colour or "").lower(), product_ids=sorted(set(product_ids or [])),
                         created_by=user if user is not None and user.is_authenticated else None)
    scene_set.full_clean()
    check_colour(scene_set.colour)
    scene_set.save()
    return scene_set


def check_colour(colour: str) -> str:
    if len(colour) != 7 or colour[0] != "#" or any(c not in "0123456789abcdefABCDEF" for c in colour[1:]):
        raise ValidationError({"colour": _("A colour is written #RRGGBB.")})
    return colour.lower()


def add_scene_photo(scene_set: SceneSet, upload, *, name: str | None = None, content_type: str | None = None,
                    user=None) -> ScenePhoto:
    """Check, normalise and store an uploaded scene photo of ``scene_set`` (the product photos' upload rules);
    nothing is stored when it is refused (``ValidationError`` naming ``image``)."""
    if scene_set.source != SceneSet.Source.UPLOADED:
        raise ValidationError({"image": _("The scene set “%(name)s” takes its backdrops from %(source)s, not from uploads.") % {
            "name": scene_set.name, "source": scene_set.get_source_display()}})
    return save_scene_photo(scene_set, uploads.normalise_upload(upload, name=name, content_type=content_type), user=user)


def save_scene_photo(scene_set: SceneSet, image: "uploads.NormalisedImage", *, user=None) -> ScenePhoto:
    """Store an upload ``normalise_upload`` checked as a scene photo of ``scene_set``: file and row, or neither."""
    photo = ScenePhoto(
        scene_set=scene_set, width=image.width, height=image.height, source_format=image.source_format,
        original_name=image.original_name, origin=ScenePhoto.Origin.UPLOADED,
        uploaded_by=user if user is not None and user.is_authenticated else None,
    )
    with files.atomic_files() as batch:
        batch.save(photo.image, "scene.png", image.content)
        photo.save()
    return photo


def available_backdrops(scene_set: SceneSet, image_size: int | None = None) -> int:
    """How many backdrops training the set's generator would have: its photos at least half ``image_size`` on
    their shorter side (a generator learns nothing from enlarging a thumbnail), or for a set made from
    product photos, the selected products with a photo (whose backdrops the training job makes)."""
    if scene_set.source == SceneSet.Source.BACKDROPS:
        return len(first_photos(scene_set.product_ids))
    half = (settings.SCENE_IMAGE_SIZE if image_size is None else image_size) // 2
    return scene_set.photos.filter(width__gte=half, height__gte=half).count()


def first_photos(product_ids: list[int]) -> list:
    """The first photo (``products.product_photos`` order: the primary one first) of each product."""
    photos: dict[int, object] = {}
    for photo in product_photos(list(product_ids)):
        photos.setdefault(photo.product_id, photo)
    return list(photos.values())


def check_trainable(scene_set: SceneSet, image_size: int | None = None) -> None:
    """``ValidationError`` when the set cannot train a generator: a studio set (drawn, nothing to learn) or
    too few backdrops, saying how many are needed."""
    if scene_set.source == SceneSet.Source.STUDIO:
        raise ValidationError({"scene_set": _("A studio scene set is drawn, not learned: it needs no training.")})
    have, need = available_backdrops(scene_set, image_size), settings.SCENE_MIN_PHOTOS
    if have < need:
        raise ValidationError({"scene_set": ngettext(
            "The scene set “%(name)s” has %(have)d usable backdrop photo; a scene generator needs at least %(need)d "
            "(at least %(side)d pixels on the shorter side). Add %(more)d more.",
            "The scene set “%(name)s” has %(have)d usable backdrop photos; a scene generator needs at least %(need)d "
            "(at least %(side)d pixels on the shorter side). Add %(more)d more.",
            have,
        ) % {"name": scene_set.name, "have": have, "need": need, "more": need - have,
             "side": (settings.SCENE_IMAGE_SIZE if image_size is None else image_size) // 2}})


def request_scene_training(scene_set: SceneSet, *, steps: int | None = None, max_minutes: float | None = None,
                           batch_size: int | None = None, seed: int | None = None, image_size: int | None = None,
                           user=None, send: bool = True) -> Job:
    """Queue a training job of the set's scene generator (refused, with the reason, when it cannot train).
    ``image_size``: the side it learns and draws backdrops at (IMAGEGEN_SCENE_IMAGE_SIZE when None)."""
    image_size = settings.SCENE_IMAGE_SIZE if image_size is None else image_size
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 32 or image_size & (image_size - 1):
        raise ValidationError({"image_size": _("The image size must be a power of two, at least 32.")})
    check_trainable(scene_set, image_size)
    steps = settings.TRAIN_STEPS if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= 10_000_000:
        raise ValidationError({"steps": _("Steps must be a positive whole number.")})
    if max_minutes is not None and not max_minutes > 0:
        raise ValidationError({"max_minutes": _("The time budget must be positive.")})
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= 256):
        raise ValidationError({"batch_size": _("Batch size must be from 1 to 256.")})
    parameters = {
        "kind": SCENE_KIND, "scene_set": scene_set.pk, "steps": steps, "max_minutes": max_minutes,
        "batch_size": batch_size, "seed": validate_seed(settings.TRAIN_SEED if seed is None else seed),
        "product_ids": list(scene_set.product_ids), "image_size": image_size,
    }
    return create_job(Job.Kind.TRAIN, parameters=parameters, user=user, send=send)


def make_backdrops(scene_set: SceneSet, progress=None) -> int:
    """Give a set made from product photos one backdrop per selected product that has none yet: the photo
    with its product cut out (the active cut-out model) and the hole filled (the active repair model, else a
    classical fill). Returns how many were made; photos that cannot be read or cut are skipped (logged)."""
    done = set(scene_set.photos.exclude(product_id=None).values_list("product_id", flat=True))
    todo = [photo for photo in first_photos(scene_set.product_ids) if photo.product_id not in done]
    if not todo:
        return 0
    backend = get_backend()
    # The active cut-out and repair models; without them the classical ones (the cut-out only on plain backdrops).
    segmenter, inpainter = active_model("segment"), active_model("inpaint")
    made = skipped = 0
    for index, photo in enumerate(todo):
        if progress is not None:
            progress(1 + 3 * index / len(todo), _("Removing the product from photo %(n)d of %(total)d") % {
                "n": index + 1, "total": len(todo)})
        image, reason = read_product_photo(photo, BACKDROP_MAX_SIDE)
        if image is None:
            logger.info("scene set %s: no backdrop from %s", scene_set.pk, reason)
            continue
        try:
            backdrop = backend.empty_backdrop(image, segmenter, inpainter)
        except ValueError as exc:
            # Without a cut-out model most photos are refused: one line each would bury the summary.
            logger.debug("scene set %s: no backdrop from %s: %s", scene_set.pk, photo.name, exc)
            skipped += 1
            continue
        row = ScenePhoto(scene_set=scene_set, width=backdrop.width, height=backdrop.height,
                         origin=ScenePhoto.Origin.BACKDROP, product_id=photo.product_id, source_format="PNG",
                         original_name=photo.name[-255:])
        with files.atomic_files() as batch:
            batch.save(row.image, "backdrop.png", files.png_file(backdrop))
            row.save()
        made += 1
    if skipped:
        logger.info("scene set %s: %d of %d product photos gave no backdrop (the cut-out could not take them%s)",
                    scene_set.pk, skipped, len(todo), "" if segmenter else "; train the cut-out model")
    return made


def cut_out_ready(products) -> list:
    """The products whose primary photo can be cut out for a scene now: every photo with a trained cut-out
    model active, only photos on a plain backdrop without one (``backend.product_mask``'s rule)."""
    from .editing import read_primary_photo

    backend, segmenter = get_backend(), active_model("segment")
    ready = []
    for product in products:
        try:
            backend.product_mask(read_primary_photo(product), segmenter)
        except (JobError, ValueError):
            continue
        ready.append(product)
    return ready


def training_backdrops(scene_set_id: int, progress=None) -> tuple[SceneSet, list]:
    """(the set, its backdrops decoded) for its training job; a JobError when the set is gone or has too few."""
    scene_set = SceneSet.objects.filter(pk=scene_set_id).first()
    if scene_set is None:
        raise JobError(_("The scene set of this job no longer exists."))
    if scene_set.source == SceneSet.Source.BACKDROPS:
        make_backdrops(scene_set, progress)
    images = []
    for photo in scene_set.photos.all():
        try:
            with photo.image.open("rb") as fh:
                image, _format = uploads.decode_photo(fh.read())
        except (ValidationError, OSError) as exc:
            logger.info("scene set %s: skipping unreadable photo %s: %s", scene_set.pk, photo.pk, exc)
            continue
        if max(image.size) > BACKDROP_MAX_SIDE:
            image.thumbnail((BACKDROP_MAX_SIDE, BACKDROP_MAX_SIDE))
        images.append(image.convert("RGB"))
    need = settings.SCENE_MIN_PHOTOS
    if len(images) < need:
        raise JobError(ngettext(
            "The scene set “%(name)s” has %(have)d usable backdrop; a scene generator needs at least %(need)d.",
            "The scene set “%(name)s” has %(have)d usable backdrops; a scene generator needs at least %(need)d.",
            len(images),
        ) % {"name": scene_set.name, "have": len(images), "need": need})
    return scene_set, images


def active_generator(scene_set: SceneSet):
    """The set's most recently activated scene generator version, or None."""
    return active_version(SCENE_KIND, scene_set=scene_set)


def scene_set_of(value) -> SceneSet:
    """The scene set named by id (an operation's option), or a ValidationError naming ``scene_set``."""
    scene_set = SceneSet.objects.filter(pk=value).first() if isinstance(value, int) else None
    if scene_set is None:
        raise ValidationError({"scene_set": _("There is no scene set %(id)s.") % {"id": value}})
    return scene_set


def describe(scene_set: SceneSet | Model) -> str:
    return str(scene_set)
