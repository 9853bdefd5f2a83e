"""imagegen's services: the one place where jobs are created, run and their results attached.

Admin actions, API views, Celery tasks and management commands call these functions and nothing else.
"""
from . import bulk
from .ab_report import report as ab_report
from .editing import primary_photo_url, request_edit
from .generation import request_generation
from .personalize import request_variants
from .shoppers import flush_events, opt_out, purge_events, record_events
from .taste import assign_new_shoppers, refresh_segments
from .jobs import JobCancelled, JobError, TooManyActiveJobs, cancel, execute, execute_many
from .photo_models import request_photo_model_training
from .model_registry import activate, deactivate, version_for
from .reconcile import reconcile
from .review import images_visible_to, review, visible_images
from .training import request_training
from .uploads import add_source_photo, normalise_upload, save_source_photo

__all__ = [
    "ab_report",
    "bandit_exploration",
    "bulk",
    "JobCancelled",
    "JobError",
    "TooManyActiveJobs",
    "activate",
    "assign_new_shoppers",
    "add_source_photo",
    "cancel",
    "deactivate",
    "execute",
    "execute_many",
    "flush_events",
    "images_visible_to",
    "normalise_upload",
    "opt_out",
    "primary_photo_url",
    "purge_events",
    "reconcile",
    "record_events",
    "refresh_segments",
    "request_edit",
    "request_generation",
    "request_photo_model_training",
    "request_training",
    "request_variants",
    "review",
    "save_source_photo",
    "version_for",
    "visible_images",
]


def bandit_exploration() -> float:
    from ..conf import settings

    return settings.BANDIT_EXPLORATION
