"""Repair: fill the regions the shop marked (scratches, stickers, dust) with what the inpainting network
trained on the shop's own photos predicts there (``mlcore.inpainting``). Every pixel outside the regions
stays the photo's own."""
from django.core.exceptions import ValidationError

from ...models import GeneratedImage
from .base import Operation

MAX_REGIONS = 20


def clean(options: dict) -> dict:
    unknown = set(options) - {"regions"}
    if unknown:
        raise ValidationError({"options": f"Unknown option(s) for repair: {', '.join(sorted(unknown))}."})
    regions = options.get("regions")
    message = (
        f"Give 1 to {MAX_REGIONS} rectangles [left, top, right, bottom] as shares of the photo's width and height "
        "(0 to 1, left < right, top < bottom)."
    )
    if not isinstance(regions, list) or not 1 <= len(regions) <= MAX_REGIONS:
        raise ValidationError({"regions": message})
    cleaned = []
    for region in regions:
        if (
            not isinstance(region, (list, tuple)) or len(region) != 4
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in region)
        ):
            raise ValidationError({"regions": message})
        left, top, right, bottom = (float(v) for v in region)
        if not (0 <= left < right <= 1 and 0 <= top < bottom <= 1):
            raise ValidationError({"regions": message})
        cleaned.append([left, top, right, bottom])
    return {"regions": cleaned}


def mask_for(size: tuple[int, int], regions: list[list[float]]):
    """The repair mask ("L", 255 = repair) of ``regions`` on a photo of ``size``."""
    from PIL import Image, ImageDraw

    width, height = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for left, top, right, bottom in regions:
        draw.rectangle(
            [round(left * width), round(top * height), max(round(right * width) - 1, 0), max(round(bottom * height) - 1, 0)],
            fill=255,
        )
    return mask


def apply(photo, options: dict, inpainter):
    return inpainter.repair(photo, mask_for(photo.size, options["regions"]))


def describe(options: dict) -> str:
    return f"{len(options['regions'])} marked region(s) filled in"


OPERATION = Operation(
    name="repair",
    label="Repair photo",
    result_kind=GeneratedImage.Kind.REPAIRED,
    clean=clean,
    apply=apply,
    describe=describe,
    model_kind="inpaint",
)
