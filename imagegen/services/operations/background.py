"""Background: cut the product out and put it, centred and padded to marketplace rules, on pure white, a
brand colour or transparency (``mlcore.background``). A segmentation network trained on the shop's photos
is used when one is active; without one the classical border-colour cut-out is."""
import re

from django.core.exceptions import ValidationError

from ...models import GeneratedImage
from .base import Operation

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
DEFAULTS = {"background": "white", "fill": 0.85, "shadow": False, "size": None}


def clean(options: dict) -> dict:
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValidationError({"options": f"Unknown option(s) for background: {', '.join(sorted(unknown))}."})
    merged = {**DEFAULTS, **{k: v for k, v in options.items() if v is not None or k == "size"}}
    background = merged["background"]
    if not isinstance(background, str) or not (background in ("white", "transparent") or _COLOUR.fullmatch(background)):
        raise ValidationError({"background": 'Background must be "white", "transparent" or a colour "#RRGGBB".'})
    fill = merged["fill"]
    if isinstance(fill, bool) or not isinstance(fill, (int, float)) or not 0.3 <= fill <= 1.0:
        raise ValidationError({"fill": "Fill must be a share of the frame from 0.3 to 1.0."})
    if not isinstance(merged["shadow"], bool):
        raise ValidationError({"shadow": "Shadow must be true or false."})
    size = merged["size"]
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or not 64 <= size <= 4096):
        raise ValidationError({"size": "Size must be a whole number of pixels from 64 to 4096."})
    return {"background": background.lower(), "fill": float(fill), "shadow": merged["shadow"], "size": size}


def _background_value(name: str):
    if name in ("white", "transparent"):
        return name
    return tuple(int(name[i : i + 2], 16) for i in (1, 3, 5))


def apply(photo, options: dict, segmenter):
    from mlcore.background import Segmenter, on_background

    segmenter = segmenter or Segmenter.classical()
    mask = segmenter.mask(photo)
    canvas = (options["size"], options["size"]) if options["size"] else None
    return on_background(
        photo, mask, background=_background_value(options["background"]), fill=options["fill"], canvas=canvas,
        shadow=options["shadow"],
    )


def describe(options: dict) -> str:
    shadow = ", with a soft shadow" if options["shadow"] else ""
    return f"cut out and placed on {options['background']}, filling {options['fill']:.0%} of the frame{shadow}"


OPERATION = Operation(
    name="background",
    label="New background",
    result_kind=GeneratedImage.Kind.BACKGROUND,
    clean=clean,
    apply=apply,
    describe=describe,
    model_kind="segment",
    model_optional=True,
)
