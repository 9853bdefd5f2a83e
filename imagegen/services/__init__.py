"""imagegen's services: the one place where jobs are created, run and their results attached.

Admin actions, API views, Celery tasks and management commands call these functions and nothing else.
Importing this package registers the job runners (``batching``, ``editing``, ``training``) with the job core.
"""
from ..jobcore.errors import JobCancelled, JobError, TooManyActiveJobs
from ..jobcore.execution import execute, execute_many
from ..jobcore.reconcile import reconcile
from ..jobcore.states import cancel
from . import batching, bulk, scene_sets
from .editing import primary_photo_url, request_edit
from .generation import request_generation
from .photo_models import request_photo_model_training
from .model_registry import activate, deactivate, version_for
from .review import images_visible_to, review, visible_images
from .training import request_training
from .uploads import add_source_photo, normalise_upload, save_source_photo

__all__ = [
    "bulk",
    "scene_sets",
    "JobCancelled",
    "JobError",
    "TooManyActiveJobs",
    "activate",
    "add_source_photo",
    "cancel",
    "deactivate",
    "execute",
    "execute_many",
    "images_visible_to",
    "normalise_upload",
    "primary_photo_url",
    "reconcile",
    "request_edit",
    "request_generation",
    "request_photo_model_training",
    "request_training",
    "review",
    "save_source_photo",
    "version_for",
    "visible_images",
]
