"""Checking generated images for near copies of their model's training photos before they are attached.

Each model version measured at training time stores a copy reference (the training photos' features and
thumbnails with both calibrated thresholds, ``mlcore.metrics.copy_gate``). A worker loads it, and the
feature extractor it was built with, once per process, like the sampler itself. An image that meets both
feature criteria (``CopyReference.check``) is attached as rejected with the reason (the pixel check's
distance is stated beside it), never published silently.
"""
import logging

from django.utils.translation import gettext as _

from ..backends import get_backend
from ..conf import settings
from ..models import ModelVersion
from .model_registry import ProcessCache, load_feature_extractor

logger = logging.getLogger(__name__)

_references = ProcessCache()


def _load(version: ModelVersion):
    """(extractor, reference, product ids) of ``version``, or None when it has no usable reference."""
    extractor_pk = (version.metrics.get("evaluation") or {}).get("feature_extractor_version")
    extractor_version = ModelVersion.objects.filter(pk=extractor_pk).first() if extractor_pk else None
    if extractor_version is None:
        logger.warning("%s: its feature extractor is gone; its images cannot be checked for near copies", version)
        return None
    with version.copy_reference.open("rb") as fh:
        reference, product_ids = get_backend().load_copy_reference(fh.read())
    extractor = load_feature_extractor(extractor_version)
    if reference.extractor_hash != extractor.content_hash:
        logger.warning("%s: its copy reference was built with other extractor weights; not checked", version)
        return None
    return extractor, reference, product_ids


def _loaded(version: ModelVersion):
    return _references.get((version.pk, version.copy_reference.name), lambda: _load(version))


def warm(version: ModelVersion) -> None:
    """Load the version's copy reference and extractor now (with its sampler), so that a storage that cannot
    be read fails the job while it loads its model, not half-way through saving its images."""
    if version.copy_reference:
        _loaded(version)


def check(version: ModelVersion, images: list) -> list[dict] | None:
    """Per generated image (PIL): its near-copy verdict as a dict (``copy``, distances, thresholds and the
    ``nearest_product``); None when the version has no copy reference (trained on a single category, or
    before references existed)."""
    if not version.copy_reference or not images:
        return None
    found = _loaded(version)
    if found is None:
        return None
    extractor, reference, product_ids = found
    size = int(version.config.get("image_size", settings.IMAGE_SIZE))
    verdicts = get_backend().check_copies(reference, extractor, images, size)
    return [verdict | {"nearest_product": product_ids[verdict["nearest"]]} for verdict in verdicts]


def rejection_note(verdict: dict) -> str:
    """Why an image was attached as rejected, for the shop owner."""
    return _(
        "Near copy of a training photo (product #%(product)s): feature distance %(fd).3f (threshold %(ft).3f), "
        "nearest/second-nearest ratio %(r).3f (threshold %(rt).3f); pixel difference %(pd).3f (second opinion, threshold "
        "%(pt).3f). "
        "A generated image must not reproduce a real photo."
    ) % {
        "product": verdict["nearest_product"], "fd": verdict["feature_distance"], "ft": verdict["feature_threshold"],
        "r": verdict["ratio"], "rt": verdict["ratio_threshold"], "pd": verdict["pixel_distance"], "pt": verdict["pixel_threshold"],
    }

