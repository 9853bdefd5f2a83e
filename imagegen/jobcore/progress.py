"""A running job's progress, written into its row; the write is also where a cancellation is noticed."""
import time
from collections.abc import Callable

from django.utils import timezone

from .errors import JobCancelled
from .states import holding

ProgressCallback = Callable[[int, str], None]


class ProgressReporter:
    """Writes a running job's progress into its row and notices cancellation.

    Calls are cheap to make often: the row is written when the percentage changes or a few seconds
    have passed.
    """

    def __init__(self, job_id: int, callback: ProgressCallback | None = None, min_interval: float = 2.0, *, attempt: int):
        self.job_id = job_id
        self.attempt = attempt
        self.callback = callback
        self.min_interval = min_interval
        self._last = (-1, 0.0)

    def __call__(self, percent: float, message: str = "") -> None:
        percent = max(0, min(100, int(percent)))
        if self.callback:
            self.callback(percent, message)
        now = time.monotonic()
        if percent == self._last[0] and now - self._last[1] < self.min_interval:
            return
        self._last = (percent, now)
        updated = holding(self.job_id, self.attempt).update(
            progress=percent, message=message[:255], updated_at=timezone.now()
        )
        if not updated:
            raise JobCancelled(self.job_id)
