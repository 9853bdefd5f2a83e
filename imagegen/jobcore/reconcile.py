"""The reconciler: sends again the jobs the broker or a worker lost.

Run periodically (the ``imagegen.reconcile_jobs`` task on Celery beat, or ``manage.py reconcile_jobs`` from
cron). Sending a job twice is harmless: only one claim succeeds, the job row decides.
"""
import logging
from collections import defaultdict
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from ..conf import settings
from ..models import BulkOperation, Job
from . import groups
from .creating import send

logger = logging.getLogger(__name__)


def stale_jobs():
    """Queued jobs nobody claimed for RECONCILE_QUEUED_AFTER seconds, and running jobs whose lease ran out.

    A bulk operation's queued jobs count as stale only while none of its jobs started or finished in that
    time: 10,000 jobs waiting their turn behind busy workers are not lost, and sending them again every
    few minutes would only pile duplicates onto the queue."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.RECONCILE_QUEUED_AFTER)
    moving = Job.objects.filter(bulk__isnull=False, updated_at__gte=cutoff).exclude(state=Job.State.QUEUED)
    waited_too_long = Q(state=Job.State.QUEUED, updated_at__lt=cutoff) & ~Q(bulk_id__in=moving.values("bulk_id"))
    lost_worker = Q(state=Job.State.RUNNING, lease_expires_at__lt=now)
    return Job.objects.filter(waited_too_long | lost_worker).order_by("pk")


def stalled_expansions():
    """Bulk operations whose expansion has not moved for RECONCILE_QUEUED_AFTER seconds (its message was
    lost, or its worker died half-way)."""
    cutoff = timezone.now() - timedelta(seconds=settings.RECONCILE_QUEUED_AFTER)
    return BulkOperation.objects.filter(
        state__in=[BulkOperation.State.QUEUED, BulkOperation.State.EXPANDING], updated_at__lt=cutoff
    ).order_by("pk")


def reconcile() -> dict[str, int]:
    """Send every stale job again (a bulk operation's as run_jobs batches), re-send stalled bulk
    expansions and settle bulk operations whose jobs are all over; returns what it did."""
    sent = unsent = 0
    per_operation: dict[int, list[int]] = defaultdict(list)
    for job_id, kind, bulk_id in stale_jobs().values_list("pk", "kind", "bulk_id"):
        if bulk_id is not None:
            per_operation[bulk_id].append(job_id)
            continue
        # Touch the row first, so the next run waits its turn again instead of sending it every minute.
        Job.objects.filter(pk=job_id, state=Job.State.QUEUED).update(updated_at=timezone.now())
        if send(job_id, kind):
            sent += 1
        else:
            unsent += 1
    batches = 0
    for job_ids in per_operation.values():
        Job.objects.filter(pk__in=job_ids, state=Job.State.QUEUED).update(updated_at=timezone.now())
        batches += groups.send_batches(job_ids)
    expansions = 0
    for operation_id in stalled_expansions().values_list("pk", flat=True):
        BulkOperation.objects.filter(pk=operation_id).update(updated_at=timezone.now())
        expansions += groups.send_expansion(operation_id)
    settled = groups.settle_running()
    if sent or unsent or batches or expansions or settled:
        logger.info(
            "reconciler: sent %d stale jobs again (%d could not be sent), %d bulk batches, %d bulk expansions; "
            "%d bulk operations finished", sent, unsent, batches, expansions, settled,
        )
    return {"sent": sent, "unsent": unsent, "bulk_batches": batches, "bulk_expansions": expansions, "bulk_settled": settled}
