"""Repair: fill the regions the shop marked (scratches, stickers, dust) with what the inpainting network
trained on the shop's own photos predicts there (``mlcore.inpainting``). Every pixel outside the regions
stays the photo's own."""
from django.core.exceptions import ValidationError

from ...models import GeneratedImage, imagegen_storage
from .. import masks
from ..jobs import JobError
from .base import Operation

MAX_REGIONS = 20


def clean(options: dict) -> dict:
    """``regions`` (rectangles), ``mask`` (the storage name of a checked mask, see ``services.masks``), or both."""
    unknown = set(options) - {"regions", "mask"}
    if unknown:
        raise ValidationError({"options": f"Unknown option(s) for repair: {', '.join(sorted(unknown))}."})
    regions, mask = options.get("regions"), options.get("mask")
    if regions is None and mask is None:
        raise ValidationError(
            {"regions": "Mark what to repair: rectangles under “regions”, or a mask image under “mask” (multipart)."}
        )
    cleaned = {}
    if regions is not None:
        cleaned["regions"] = _clean_regions(regions)
    if mask is not None:
        if not masks.is_stored_name(mask):
            raise ValidationError({"mask": "Send the mask as an image file (multipart/form-data field “mask”)."})
        cleaned["mask"] = mask
    return cleaned


def _clean_regions(regions) -> list[list[float]]:
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
    return cleaned


def mask_for(size: tuple[int, int], options: dict):
    """The repair mask ("L", 255 = repair) of a photo of ``size``: the rectangles and the stored mask together."""
    from PIL import Image, ImageChops, ImageDraw

    width, height = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for left, top, right, bottom in options.get("regions", []):
        draw.rectangle(
            [round(left * width), round(top * height), max(round(right * width) - 1, 0), max(round(bottom * height) - 1, 0)],
            fill=255,
        )
    if options.get("mask"):
        try:
            painted = masks.load(imagegen_storage(), options["mask"], size)
        except OSError as exc:
            raise JobError(f"The repair mask {options['mask']} cannot be read: {exc}") from exc
        mask = ImageChops.lighter(mask, painted)
    return mask


def apply(photo, options: dict, inpainter):
    return inpainter.repair(photo, mask_for(photo.size, options))


def describe(options: dict) -> str:
    parts = []
    if options.get("regions"):
        parts.append(f"{len(options['regions'])} marked rectangle(s)")
    if options.get("mask"):
        parts.append("a painted mask")
    return " and ".join(parts) + " filled in"


OPERATION = Operation(
    name="repair",
    label="Repair photo",
    result_kind=GeneratedImage.Kind.REPAIRED,
    clean=clean,
    apply=apply,
    describe=describe,
    model_kind="inpaint",
    takes_mask=True,
)
