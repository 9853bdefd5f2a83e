"""What the runners of model jobs (generate, edit, train) share: running out of memory is named as such, and
the memory a failed attempt held is given back before the next job."""
from ..jobcore.runners import Runner
from . import memory


class ModelRunner(Runner):
    def failure_text(self, exc: BaseException) -> str:
        return memory.failure_text(exc)

    def after_failure(self, exc: BaseException) -> None:
        # Only then: a full collection costs about 0.1 s, more than a small generate job.
        if memory.is_out_of_memory(exc):
            memory.release_memory()
