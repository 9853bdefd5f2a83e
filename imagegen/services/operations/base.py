"""What every photo operation declares."""
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image


@dataclass(frozen=True)
class Operation:
    name: str  # the API's path segment and the job's parameters["operation"]
    label: str  # what the admin action and the job's messages call it
    result_kind: str  # GeneratedImage.Kind of the result
    clean: Callable[[dict], dict]  # validated, complete options, or ValidationError naming the field
    apply: Callable[[Image.Image, dict, Any], Image.Image]  # (upright RGB/RGBA photo, options, model or None)
    describe: Callable[[dict], str]  # the options in words, for the image's provenance
    model_kind: str | None = None  # the ModelVersion kind it needs, None when it needs no trained model
    model_optional: bool = False  # with a model kind: without an active version, run without one
    # In the job, before ``apply``: turns stored options into what ``apply`` needs (e.g. reference photos
    # into a look), so the web request that queued the job never decodes photos or loads torch.
    prepare: Callable[[dict], dict] | None = None
    # Whether a mask image may come with the request (``services.masks``), stored as ``options["mask"]``.
    takes_mask: bool = False
