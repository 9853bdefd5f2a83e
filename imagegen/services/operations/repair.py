"""Repair: fill the regions the shop marked (scratches, stickers, dust) with what the inpainting network
trained on the shop's own photos predicts there (``mlcore.inpainting``), where it beat OpenCV's fills on the
shop's held-out photos for holes of that size, else with the better of those. Every pixel outside the regions
stays the photo's own."""
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ...backends import get_backend
from ...jobcore.errors import JobError
from ...models import imagegen_storage
from .. import masks
from ..validated_choices import describe_with_step, validated_choices
from .base import Operation, register

MAX_REGIONS = 20
# What can be found without the shop marking it; only where it is reliable (see mlcore.background.specks).
DETECTORS = ("backdrop_specks",)
REGIONS_MESSAGE = (
    f"Give 1 to {MAX_REGIONS} rectangles [left, top, right, bottom] as shares of the photo's width and height "
    "(0 to 1, left < right, top < bottom)."
)


# ``regions`` (rectangles), ``mask`` (the storage name of a checked mask, see ``services.masks``) and ``detect``
# (``"backdrop_specks"``: find them automatically), any of them together. (Options serializers have no
# docstring: the API schema would publish it as the request's description.)
class RepairOptions(serializers.Serializer):
    regions = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(min_value=0.0, max_value=1.0), min_length=4, max_length=4),
        min_length=1, max_length=MAX_REGIONS, required=False,
        help_text="Rectangles [left, top, right, bottom] to repair, as shares (0 to 1) of the photo's width and height.",
    )
    detect = serializers.ChoiceField(
        choices=list(DETECTORS), required=False, allow_null=True,
        help_text="Also find what to repair automatically: \"backdrop_specks\" marks dust and specks on a plain "
        "backdrop (never on the product); the job fails with the reason on a photo where that is not reliable.",
    )
    mask = serializers.CharField(
        required=False, help_text="The storage name of the checked mask (services.masks); requests send the image."
    )

    def validate_regions(self, value: list[list[float]]) -> list[list[float]]:
        for left, top, right, bottom in value:
            if not (left < right and top < bottom):
                raise serializers.ValidationError(REGIONS_MESSAGE)
        return value

    def validate_mask(self, value: str) -> str:
        if not masks.is_stored_name(value):
            raise serializers.ValidationError("Send the mask as an image file (multipart/form-data field “mask”).")
        return value

    def validate(self, data: dict) -> dict:
        data = {name: value for name, value in data.items() if value is not None}
        if not any(name in data for name in ("regions", "mask", "detect")):
            raise serializers.ValidationError(
                {"regions": "Mark what to repair: rectangles under “regions”, a mask image under “mask” (multipart), "
                 "or “detect”: “backdrop_specks”."}
            )
        return data


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
        specks = get_backend().find_backdrop_specks(photo)
        if specks.mask is None:
            raise JobError(f"Specks cannot be found reliably on this photo: {specks.reason}. Mark them by hand instead.")
        mask = ImageChops.lighter(mask, specks.as_image())
    if mask.getbbox() is None:
        raise JobError("No specks were found on the backdrop: there is nothing to repair.")
    return mask


@register
class Repair(Operation):
    """Fill the marked regions (scratches, stickers, dust) with the shop's own trained inpainting model where it
    beat OpenCV's Telea and Navier-Stokes fills on the shop's held-out photos for holes of that size, else with
    the better of those (without a trained model: Telea); the result's `repair` says which ran. Every pixel
    outside the regions stays the photo's. Mark them as rectangles (`regions`, JSON) or as a mask image
    (`mask`, multipart/form-data: white = repair, black or transparent = keep, the photo's proportions, at
    most half the photo). The result is a new image, reviewed like generated ones."""

    name = "repair"
    order = 20
    label = _("Repair photo")
    serializer_class = RepairOptions
    result_kind = "repaired"
    result_label = _("Repaired photo")
    model_kind = "inpaint"
    model_label = _("Repair (inpainting) model")
    model_optional = True
    takes_mask = True
    action_name = "repair_photos"
    action_title = _("Repair photos")
    action_button = _("Repair")
    action_description = _("Repair marked regions of the photos (inpainting; paint or a rectangle)")
    admin_form = "imagegen.admin.operation_forms.RepairForm"

    def example_options(self, products: list) -> dict:
        return {"regions": [[0.25, 0.25, 0.5, 0.5]]}

    def load_models(self, options: dict, models) -> dict:
        return validated_choices(models, self.model_kind)

    def apply(self, photo, options: dict, inpainter):
        image, step = get_backend().repair_photo(photo, mask_for(photo, options), options["_choices"], inpainter)
        image.info["imagegen"] = {"repair": {**step, "choices_from": options["_choices_from"]},
                                  "model_used": step["method"] == "model"}
        return image

    def describe_result(self, options: dict, info: dict) -> str:
        return describe_with_step(self.describe(options), info, "repair")

    def describe(self, options: dict) -> str:
        parts = []
        if options.get("regions"):
            parts.append(f"{len(options['regions'])} marked rectangle(s)")
        if options.get("mask"):
            parts.append("a painted mask")
        if options.get("detect"):
            parts.append("specks found on the backdrop")
        return " and ".join(parts) + " filled in"
