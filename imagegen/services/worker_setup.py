"""What a Celery pool process does before its first task: pick its GPU and load the active models.

Run in the pool process after the fork (``imagegen.worker_process``), never in the parent: a CUDA context
does not survive a fork. Workers that only consume the light queue import no torch at all."""
import logging
import os
from collections.abc import Iterable

from django.db import connections

from ..backends import get_backend
from ..conf import settings
from ..models import ModelVersion

logger = logging.getLogger(__name__)


def serves_models(queues: Iterable[str]) -> bool:
    """Whether a worker consuming ``queues`` runs inference or training (and so needs torch)."""
    return bool({settings.QUEUE, settings.TRAIN_QUEUE} & set(queues))


def prepare_process(index: int, queues: Iterable[str]) -> list[int]:
    """Pin pool process ``index`` to its device and, on an inference worker with IMAGEGEN_WARM_MODELS, load
    the active model versions. Returns the ids of the versions loaded."""
    queues = set(queues)
    if not serves_models(queues):
        return []
    device = get_backend().process_device(settings.DEVICE, index)
    logger.info("imagegen worker process %s (pool index %s) uses %s", os.getpid(), index, device)
    if not (settings.WARM_MODELS and settings.QUEUE in queues):
        return []
    return warm_models()


def warm_models() -> list[int]:
    """Load the newest active model versions (as many as a process keeps) so the first jobs find them loaded.

    A version that cannot be loaded is logged and skipped: the job that needs it reports the reason."""
    from .model_registry import load_sampler

    loaded = []
    try:
        versions = ModelVersion.objects.filter(is_active=True).order_by("-created_at", "-id")
        for version in versions[: settings.LOADED_MODELS_PER_PROCESS]:
            try:
                load_sampler(version)
            except Exception:  # a broken checkpoint must not keep the worker from starting
                logger.warning("could not warm model version %s", version.pk, exc_info=True)
            else:
                loaded.append(version.pk)
    finally:
        # This runs at process start, outside any task: leave no connection behind for the first task to inherit.
        connections.close_all()
    return loaded
