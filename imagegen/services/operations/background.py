"""Background: cut the product out and put it, centred and padded to marketplace rules, on pure white, a
brand colour, transparency, or a generated studio backdrop in white or the brand colour (``mlcore.background``). A segmentation network trained on the shop's photos
is used when one is active; without one the classical border-colour cut-out is."""
import re

from django.core.exceptions import ValidationError

from ...models import GeneratedImage
from ..jobs import JobError
from .base import Operation

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
DEFAULTS = {"background": "white", "fill": 0.85, "shadow": False, "size": None, "backdrop": "plain"}
BACKDROPS = ("plain", "studio")
# The studio backdrop of "white": a light grey sweep (a white one would not show its shape).
STUDIO_WHITE = (236, 236, 236)
# Every product gets the same backdrop, grain included: one look across the catalogue.
STUDIO_SEED = 0


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
    backdrop = merged["backdrop"]
    if backdrop not in BACKDROPS:
        raise ValidationError({"backdrop": 'Backdrop must be "plain" (one flat colour) or "studio" (a generated studio sweep).'})
    if backdrop == "studio" and background == "transparent":
        raise ValidationError({"backdrop": "A studio backdrop needs a colour: choose white or #RRGGBB as background."})
    return {
        "background": background.lower(), "fill": float(fill), "shadow": merged["shadow"], "size": size, "backdrop": backdrop,
    }


def hex_rgb(name: str) -> tuple[int, int, int]:
    """(r, g, b) of a "#rrggbb" colour."""
    return tuple(int(name[i : i + 2], 16) for i in (1, 3, 5))


def _background_value(options: dict):
    name = options["background"]
    if options.get("backdrop") == "studio":
        import torch

        from mlcore.background.textures import studio_sweep

        colour = torch.tensor(STUDIO_WHITE if name == "white" else hex_rgb(name)) / 255.0
        return lambda height, width: studio_sweep(colour, height, width, torch.Generator().manual_seed(STUDIO_SEED))
    return name if name in ("white", "transparent") else hex_rgb(name)


def apply(photo, options: dict, segmenter):
    from mlcore.background import Segmenter, on_background

    segmenter = segmenter or Segmenter.classical()
    mask = segmenter.mask(photo)
    canvas = (options["size"], options["size"]) if options["size"] else None
    try:
        return on_background(
            photo, mask, background=_background_value(options), fill=options["fill"], canvas=canvas,
            shadow=options["shadow"],
        )
    except ValueError as exc:
        # An empty cut-out: the product blends into its backdrop too well for the segmenter.
        raise JobError(f"The product could not be cut out of this photo ({exc}).") from exc


def describe(options: dict) -> str:
    shadow = ", with a soft shadow" if options["shadow"] else ""
    on = f"a generated studio backdrop in {options['background']}" if options.get("backdrop") == "studio" else options["background"]
    return f"cut out and placed on {on}, filling {options['fill']:.0%} of the frame{shadow}"


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
