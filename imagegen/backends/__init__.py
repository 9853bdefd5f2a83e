"""imagegen's one door into the models: the backend named by IMAGEGEN_BACKEND.

Only the backend imports ``mlcore`` and ``torch`` (``make test``'s import contracts check it), so a web
process that stores jobs, serves the API and the admin never loads torch. The default,
``imagegen.backends.torch.TorchBackend``, runs the models of ``mlcore``; a host may name its own class (a
remote inference service, say) with the same methods.
"""
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

from ..conf import settings


class UnusablePhotos(ValueError):
    """The photos cannot teach a model (too small for its crops, no plain backdrop to cut out ...): the
    message says why, in the model code's words."""


def get_backend() -> Any:
    """The configured backend, made once per process and per IMAGEGEN_BACKEND value."""
    return _backend(settings.BACKEND)


@cache
def _backend(path: str) -> Any:
    return import_string(path)()
