"""imagegen's services: the one place where jobs are created, run and their results attached.

Admin actions, API views, Celery tasks and management commands call these functions and nothing else.
"""
from .generation import request_generation
from .jobs import JobCancelled, JobError, cancel, execute
from .model_registry import activate, deactivate, version_for
from .reconcile import reconcile
from .review import review, visible_images
from .training import request_training

__all__ = [
    "JobCancelled",
    "JobError",
    "activate",
    "cancel",
    "deactivate",
    "execute",
    "reconcile",
    "request_generation",
    "request_training",
    "review",
    "version_for",
    "visible_images",
]
