"""Job leases: how a job survives the death of the worker running it.

A worker that claims a job holds a lease on it (``lease_expires_at``) and a heartbeat thread renews it
while the job runs. A job still ``running`` after its lease ran out has lost its worker (SIGKILL, out of
memory, a deploy); it may be claimed again, and the attempt number taken at the claim fences the old
attempt off: whatever it still writes is refused once a newer attempt holds the job.
"""
import logging
import os
import socket
import threading
from collections.abc import Mapping
from datetime import timedelta

from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from ..conf import settings
from ..models import Job

logger = logging.getLogger(__name__)


def torchrun_marker() -> str:
    """" torchrun <run id>" under torchrun, else "": a restarted run finds the job it was training by it."""
    run = os.environ.get("TORCHELASTIC_RUN_ID")
    return f" torchrun {run}" if run else ""


def worker_id() -> str:
    """host:pid, and under torchrun its run id (``torchrun_marker``)."""
    return f"{socket.gethostname()}:{os.getpid()}{torchrun_marker()}"


def lease_until():
    return timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)


def renew(held: Mapping[int, int]) -> int:
    """Extend the leases of running jobs (``held`` maps job id to attempt) in one query, each only while its
    attempt still holds it; returns how many were renewed."""
    if not held:
        return 0
    holding = Q()
    for job_id, attempt in held.items():
        holding |= Q(pk=job_id, attempts=attempt)
    return Job.objects.filter(holding, state=Job.State.RUNNING).update(lease_expires_at=lease_until())


class Heartbeat:
    """Renews the leases of the jobs a worker holds (``held`` maps job id to attempt: one job, or the jobs of
    a batched pass) from a daemon thread every third of the lease, for as long as the block runs; it stops
    once none of them is held any more."""

    def __init__(self, held: Mapping[int, int]) -> None:
        self.held = dict(held)
        name = next(iter(self.held)) if len(self.held) == 1 else f"{len(self.held)}-jobs"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"imagegen-heartbeat-{name}", daemon=True)

    def _run(self) -> None:
        interval = max(0.5, settings.JOB_LEASE_SECONDS / 3)
        try:
            while not self._stop.wait(interval):
                try:
                    if not renew(self.held):
                        return
                except Exception:  # a database blip: try again next beat, the lease has slack for two misses
                    logger.warning("jobs %s: could not renew their leases", sorted(self.held), exc_info=True)
                    close_old_connections()
        finally:
            # The thread has its own database connection; do not leave it open behind.
            connection.close()

    def hold(self, more: Mapping[int, int]) -> None:
        """Renew the leases of ``more`` jobs too (jobs gathered into the batch after it started)."""
        # A new dict rather than an update: the thread reads the attribute without a lock.
        self.held = {**self.held, **more}

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
