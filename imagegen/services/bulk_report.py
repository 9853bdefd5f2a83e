"""What a bulk operation has done so far: progress, counts per state and, once it is over, its summary."""
from typing import TypedDict

from django.db.models import Count, Q
from django.utils import timezone

from ..models import BulkOperation, GeneratedImage, Job

# The most common failure reasons a summary names.
TOP_REASONS = 5


class FailureReason(TypedDict):
    error: str
    count: int


class Report(TypedDict):
    progress: int
    jobs: int
    counts: dict[str, int]
    images: int
    failure_reasons: list[FailureReason]
    duration_seconds: float


def counts(operation: BulkOperation) -> dict[str, int]:
    """Jobs of the operation per state, in one aggregate query."""
    return Job.objects.filter(bulk_id=operation.pk).aggregate(
        **{state: Count("pk", filter=Q(state=state)) for state in Job.State.values}
    )


def progress(operation: BulkOperation, per_state: dict[str, int]) -> int:
    """Share (0-100) of the operation's expected jobs that have finished."""
    if operation.state == BulkOperation.State.SUCCEEDED:
        return 100
    expected = operation.total - operation.skipped
    if expected <= 0:
        return 100 if operation.is_finished else 0
    finished = sum(per_state[state] for state in Job.FINISHED_STATES)
    return min(100, finished * 100 // expected)


def report(operation: BulkOperation) -> Report:
    """Progress and counts (one aggregate query), images made, the most common failure reasons with their
    counts, and the duration (so far, while it runs)."""
    per_state = counts(operation)
    reasons = list(
        Job.objects.filter(bulk_id=operation.pk, state=Job.State.FAILED)
        .values("error").annotate(count=Count("pk")).order_by("-count", "error")[:TOP_REASONS]
    )
    end = operation.finished_at or timezone.now()
    return {
        "progress": progress(operation, per_state),
        "jobs": sum(per_state.values()),
        "counts": per_state,
        "images": GeneratedImage.objects.filter(job__bulk_id=operation.pk).count(),
        "failure_reasons": [{"error": r["error"], "count": r["count"]} for r in reasons],
        "duration_seconds": round((end - operation.created_at).total_seconds(), 3),
    }
