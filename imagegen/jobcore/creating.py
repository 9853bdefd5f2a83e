"""Storing a job and handing its id to the broker."""
import logging

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Model
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from ..conf import settings
from ..models import Job
from .errors import TooManyActiveJobs
from .runners import runner_for

logger = logging.getLogger(__name__)


def create_job(kind: str, *, product: Model | None = None, parameters: dict, user=None, send: bool = True) -> Job:
    """Store a queued job and, unless ``send`` is False (the caller runs it itself with ``execute``),
    send it to the workers once the surrounding transaction commits."""
    with transaction.atomic():
        _check_active_jobs(user)
        job = Job.objects.create(
            kind=kind,
            product=product,
            parameters=parameters,
            requested_by=user if user is not None and user.is_authenticated else None,
        )
        if send:
            enqueue(job)
    return job


def _check_active_jobs(user) -> None:
    """Refuse a new job to a user at the cap. Locking the user's row serialises one user's concurrent
    requests, so two of them cannot both see room for one more job."""
    cap = settings.MAX_ACTIVE_JOBS_PER_USER
    if cap is None or user is None or not user.is_authenticated:
        return
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
    # A bulk operation's jobs are capped as one operation (IMAGEGEN_MAX_ACTIVE_BULK_OPERATIONS_PER_USER).
    active = Job.objects.filter(
        requested_by=user, state__in=[Job.State.QUEUED, Job.State.RUNNING], bulk__isnull=True
    ).count()
    if active >= cap:
        raise TooManyActiveJobs(
            _(
                "You have %(active)s jobs queued or running, the most one user may have at once "
                "(IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER = %(cap)s). Wait for some to finish, or cancel some."
            ) % {"active": active, "cap": cap}
        )


def enqueue(job: Job) -> None:
    """Send the job's id to its queue after commit, so a worker never looks for a row not yet visible."""
    job_id, kind = job.pk, job.kind
    transaction.on_commit(lambda: send(job_id, kind))


def queue_for(kind: str) -> str:
    """The Celery queue of a job kind, as its runner declares it."""
    return runner_for(kind).queue()


def send(job_id: int, kind: str | None = None) -> bool:
    """Hand a job id to the broker now; False (logged) when the broker cannot be reached.

    The job is stored either way: the reconciler sends queued jobs nobody claimed once the broker is back,
    so a broker outage delays work instead of failing the request that asked for it."""
    if kind is None:
        kind = Job.objects.values_list("kind", flat=True).get(pk=job_id)
    runner = runner_for(kind)
    task = import_string(runner.task)
    try:
        # No publish retries: a web request must not hang on a dead broker; the reconciler retries.
        task.apply_async(args=[job_id], queue=runner.queue(), retry=False, **runner.time_limits())
    except Exception as exc:  # kombu raises OperationalError, redis-py its own ConnectionError
        logger.warning("job %s stays queued, the broker is unreachable: %s", job_id, exc)
        return False
    return True
