"""The exceptions a job's runner raises and its callers catch, and how an unforeseen one is written down."""

# How the error of a job that raised something unforeseen begins (a torchrun restart looks for it).
UNEXPECTED_PREFIX = "Unexpected error ("


def unexpected_error_text(exc: BaseException) -> str:
    """A failed job's error for an exception nobody foresaw: its type and its own words (untranslated:
    they are the library's, and the prefix is looked for)."""
    return f"{UNEXPECTED_PREFIX}{type(exc).__name__}): {exc}"


class JobError(Exception):
    """A failure the shop owner can act on; its text is stored on the job as it is."""


class TooManyActiveJobs(Exception):
    """The user already has IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER jobs queued or running."""


class JobCancelled(Exception):
    """The job was cancelled while it ran; the runner stops and leaves the row as it is."""
