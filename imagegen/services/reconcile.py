"""The reconciler: sends again the jobs the broker or a worker lost.

Run periodically (the ``imagegen.reconcile_jobs`` task on Celery beat, or ``manage.py reconcile_jobs`` from
cron). Sending a job twice is harmless: only one claim succeeds, the job row decides.
"""
import logging
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from ..conf import settings
from ..models import Job
from .jobs import send

logger = logging.getLogger(__name__)


def stale_jobs():
    """Queued jobs nobody claimed for RECONCILE_QUEUED_AFTER seconds, and running jobs whose lease ran out."""
    now = timezone.now()
    waited_too_long = Q(state=Job.State.QUEUED, updated_at__lt=now - timedelta(seconds=settings.RECONCILE_QUEUED_AFTER))
    lost_worker = Q(state=Job.State.RUNNING, lease_expires_at__lt=now)
    return Job.objects.filter(waited_too_long | lost_worker).order_by("pk")


def reconcile() -> dict[str, int]:
    """Send every stale job again; returns how many were sent and how many could not be (broker down)."""
    sent = unsent = 0
    for job_id, kind in stale_jobs().values_list("pk", "kind"):
        # Touch the row first, so the next run waits its turn again instead of sending it every minute.
        Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(updated_at=timezone.now())
        if send(job_id, kind):
            sent += 1
        else:
            unsent += 1
    if sent or unsent:
        logger.info("reconciler: sent %d stale jobs again, %d could not be sent", sent, unsent)
    return {"sent": sent, "unsent": unsent}
