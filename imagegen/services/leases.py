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


def worker_id() -> str:
    """host:pid, and under torchrun its run id, by which a restarted run knows the job it was training."""
    run = os.environ.get("TORCHELASTIC_RUN_ID")
    return f"{socket.gethostname()}:{os.getpid()}" + (f" torchrun {run}" if run else "")


def lease_until():
    return timezone.now() + timedelta(seconds=settings.JOB_LEASE_SECONDS)


def renew(job_id: int, attempt: int) -> bool:
    """Extend the lease of ``attempt`` of a running job; False when the attempt no longer holds it."""
    return bool(
        Job.objects.filter(pk=job_id, state=Job.State.RUNNING, attempts=attempt).update(lease_expires_at=lease_until())
    )


class Heartbeat:
    """Renews a job's lease from a daemon thread every third of the lease, for as long as the block runs."""

    def __init__(self, job_id: int, attempt: int) -> None:
        self.job_id, self.attempt = job_id, attempt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"imagegen-heartbeat-{job_id}", daemon=True)

    def _renew(self) -> bool:
        return renew(self.job_id, self.attempt)

    def _run(self) -> None:
        interval = max(0.5, settings.JOB_LEASE_SECONDS / 3)
        try:
            while not self._stop.wait(interval):
                try:
                    if not self._renew():
                        return
                except Exception:  # a database blip: try again next beat, the lease has slack for two misses
                    logger.warning("job %s: could not renew its lease", self.job_id, exc_info=True)
                    close_old_connections()
        finally:
            # The thread has its own database connection; do not leave it open behind.
            connection.close()

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def renew_all(held: Mapping[int, int]) -> int:
    """Extend the leases of several running jobs in one query, each only while its attempt (``held`` maps
    job id to attempt) still holds it; returns how many were renewed."""
    if not held:
        return 0
    holding = Q()
    for job_id, attempt in held.items():
        holding |= Q(pk=job_id, attempts=attempt)
    return Job.objects.filter(holding, state=Job.State.RUNNING).update(lease_expires_at=lease_until())


class HeartbeatSet(Heartbeat):
    """One heartbeat thread for the jobs of a batched pass; it beats while any of them is still held."""

    def __init__(self, held: Mapping[int, int]) -> None:
        self.held = dict(held)
        super().__init__(min(self.held), 0)
        self._thread.name = f"imagegen-heartbeat-{len(self.held)}-jobs"

    def _renew(self) -> bool:
        return renew_all(self.held) > 0
