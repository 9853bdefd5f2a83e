"""The registry of trained model versions: which one serves a category, activation, and loading.

Models load through the backend (``imagegen.backends``), so a web process that only queues jobs never loads torch.
Loaded samplers are cached per worker process, lazily on first use, so a forked worker never inherits
a model (or a CUDA context) from its parent and a model is loaded once, not once per task.
"""
import logging
import os
import threading
from collections import OrderedDict

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..backends import get_backend
from ..conf import settings
from ..models import ModelVersion
from .photo_model_kinds import is_photo_model

logger = logging.getLogger(__name__)

# Which of several active versions serves: the one activated last.
SERVING_ORDER = (F("activated_at").desc(nulls_last=True), "-created_at", "-id")



class ProcessCache:
    """What a worker process loads from storage once and keeps: the IMAGEGEN_LOADED_MODELS_PER_PROCESS most
    recently used entries, each loaded on first use (never in a parent process before it forks)."""

    caches: "list[ProcessCache]" = []

    def __init__(self) -> None:
        self._entries: "OrderedDict[tuple, object]" = OrderedDict()
        self._lock = threading.Lock()
        ProcessCache.caches.append(self)

    def get(self, key: tuple, load):
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        value = load()
        with self._lock:
            self._entries[key] = value
            while len(self._entries) > settings.LOADED_MODELS_PER_PROCESS:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_samplers = ProcessCache()
_extractors = ProcessCache()


def version_for(kind: str, category: str) -> ModelVersion | None:
    """The most recently activated active version of ``kind`` trained on ``category``.

    By activation, not by age: activating an older version is how staff roll back, and it must serve its
    categories even when a newer active version covers more of them (and so was not retired)."""
    # Few rows; filtering in Python keeps this portable (SQLite has no JSON containment lookup).
    for version in ModelVersion.objects.filter(kind=kind, is_active=True).order_by(*SERVING_ORDER):
        if category in version.categories:
            return version
    return None


@transaction.atomic
def activate(version: ModelVersion) -> list[int]:
    """Make ``version`` active; active versions of the same kind whose categories it covers are
    retired (all of them for a photo model, which serves the whole catalogue; those of its scene set for a
    scene generator). Returns the ids retired."""
    covered = set(version.categories)
    whole_catalogue = is_photo_model(version.kind)
    # A scene generator serves its scene set only: it retires that set's other versions.
    rivals = ModelVersion.objects.select_for_update().filter(kind=version.kind, is_active=True, scene_set=version.scene_set_id)
    retired = [
        other.pk
        for other in rivals
        if other.pk != version.pk and (whole_catalogue or set(other.categories) <= covered)
    ]
    ModelVersion.objects.filter(pk__in=retired).update(is_active=False)
    # Stamped on every activation, so a later activation of an older version (a rollback) serves first.
    now = timezone.now()
    ModelVersion.objects.filter(pk=version.pk).update(is_active=True, activated_at=now)
    version.is_active, version.activated_at = True, now
    return retired


def deactivate(version: ModelVersion) -> None:
    ModelVersion.objects.filter(pk=version.pk).update(is_active=False)
    version.is_active = False


def active_version(kind: str, *, scene_set=None) -> ModelVersion | None:
    """The serving version of a photo model kind (the one activated last), or of a scene set's generator."""
    return ModelVersion.objects.filter(kind=kind, is_active=True, scene_set=scene_set).order_by(*SERVING_ORDER).first()


def active_model(kind: str, *, scene_set=None):
    """``active_version``'s loaded model, or None when none is active."""
    version = active_version(kind, scene_set=scene_set)
    return None if version is None else load_sampler(version)


def inference_options():
    """The fast-path options (mlcore.inference) the IMAGEGEN_INFERENCE_* settings ask for."""
    return get_backend().inference_options(
        precision=settings.INFERENCE_PRECISION,
        channels_last=settings.INFERENCE_CHANNELS_LAST,
        compile=settings.INFERENCE_COMPILE,
        max_batch=settings.INFERENCE_MAX_BATCH,
    )


def load_sampler(version: ModelVersion):
    """The version's sampler (a photo model's model), loaded from storage with ``weights_only=True`` on
    first use."""
    backend = get_backend()
    options = inference_options()

    def load():
        device = backend.resolve_device(settings.DEVICE)
        with version.checkpoint.open("rb") as fh:
            if is_photo_model(version.kind):  # photo models run as they are
                sampler = backend.load_photo_model(version.kind, fh, device=device)
            else:
                sampler = backend.load_generator(fh, version.kind, device=device, options=options)
        logger.info("model version %s loaded into process %s", version.pk, os.getpid())
        return sampler

    return _samplers.get((version.pk, version.checkpoint.name, options), load)


def load_feature_extractor(version: ModelVersion):
    """A feature-extractor version's frozen classifier (``weights_only=True``), once per process."""
    def load():
        with version.checkpoint.open("rb") as fh:
            return get_backend().load_feature_extractor(fh.read())

    return _extractors.get((version.pk, version.checkpoint.name), load)


def clear_cache() -> None:
    """Forget everything this process loaded (samplers, feature extractors, copy references)."""
    for cache in ProcessCache.caches:
        cache.clear()
