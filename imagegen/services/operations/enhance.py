"""Enhance: denoise, deblur, JPEG clean-up, exposure and colour correction, optionally upscaling x2 or x4,
by the restoration network trained on the shop's own photos (``mlcore.restoration``)."""
from django.core.exceptions import ValidationError

from ...models import GeneratedImage
from .base import Operation

UPSCALES = (1, 2, 4)


def clean(options: dict) -> dict:
    upscale = options.get("upscale", 1)
    if isinstance(upscale, bool) or upscale not in UPSCALES:
        raise ValidationError({"upscale": f"Upscale must be one of {', '.join(map(str, UPSCALES))}."})
    unknown = set(options) - {"upscale"}
    if unknown:
        raise ValidationError({"options": f"Unknown option(s) for enhance: {', '.join(sorted(unknown))}."})
    return {"upscale": int(upscale)}


def apply(photo, options: dict, restorer):
    return restorer.enhance(photo, upscale=options["upscale"])


def describe(options: dict) -> str:
    return "restored" if options["upscale"] == 1 else f"restored and upscaled x{options['upscale']}"


OPERATION = Operation(
    name="enhance",
    label="Enhance photo",
    result_kind=GeneratedImage.Kind.ENHANCED,
    clean=clean,
    apply=apply,
    describe=describe,
    model_kind="restore",
)
