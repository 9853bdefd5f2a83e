"""Repair: fill the regions the shop marked (scratches, stickers, dust) with what the inpainting network
trained on the shop's own photos predicts there (``mlcore.inpainting``). Every pixel outside the regions
stays the photo's own."""
from django.core.exceptions import ValidationError

from ...models import GeneratedImage, imagegen_storage
from .. import masks
from ..jobs import JobError
from .base import Operation

MAX_REGIONS = 20
# What can be found without the shop marking it; only where it is reliable (see mlcore.background.specks).
DETECTORS = ("backdrop_specks",)


def clean(options: dict) -> dict:
    """``regions`` (rectangles), ``mask`` (the storage name of a checked mask, see ``services.masks``) and
    ``detect`` (``"backdrop_specks"``: find them automatically), any of them together."""
    unknown = set(options) - {"regions", "mask", "detect"}
    if unknown:
        raise ValidationError({"options": f"Unknown option(s) for repair: {', '.join(sorted(unknown))}."})
    regions, mask, detect = options.get("regions"), options.get("mask"), options.get("detect")
    if regions is None and mask is None and detect is None:
        raise ValidationError(
            {"regions": "Mark what to repair: rectangles under “regions”, a mask image under “mask” (multipart), "
             "or “detect”: “backdrop_specks”."}
        )
    cleaned = {}
    if detect is not None:
        if detect not in DETECTORS:
            raise ValidationError({"detect": f"Automatic detection knows: {', '.join(DETECTORS)}."})
        cleaned["detect"] = detect
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


def mask_for(photo, options: dict):
    """The repair mask ("L", 255 = repair) of ``photo``: the rectangles, the stored mask and what automatic
    detection finds, together. A JobError when detection cannot judge the photo or nothing is marked."""
    from PIL import Image, ImageChops, ImageDraw

    size = photo.size
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
    if options.get("detect") == "backdrop_specks":
        from mlcore.background.specks import find_backdrop_specks

        specks = find_backdrop_specks(photo)
        if specks.mask is None:
            raise JobError(f"Specks cannot be found reliably on this photo: {specks.reason}. Mark them by hand instead.")
        mask = ImageChops.lighter(mask, specks.as_image())
    if mask.getbbox() is None:
        raise JobError("No specks were found on the backdrop: there is nothing to repair.")
    return mask


def apply(photo, options: dict, inpainter):
    return inpainter.repair(photo, mask_for(photo, options))


def describe(options: dict) -> str:
    parts = []
    if options.get("regions"):
        parts.append(f"{len(options['regions'])} marked rectangle(s)")
    if options.get("mask"):
        parts.append("a painted mask")
    if options.get("detect"):
        parts.append("specks found on the backdrop")
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
