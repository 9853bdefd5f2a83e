"""Expand: the photo on a larger canvas (an aspect ratio, or margins in pixels), the new margins filled by the
inpainting model trained on the shop's photos where it beat the classical fills on held-out photos, else by the
best of those; the photo's own pixels stay exactly where they were."""
from django.utils.translation import gettext, gettext_lazy as _
from rest_framework import serializers

from ...backends import get_backend
from ...jobcore.errors import JobError
from ..validated_choices import describe_with_step, validated_choices
from .base import Operation, register


class ExpandOptions(serializers.Serializer):
    aspect = serializers.ChoiceField(
        choices=[], required=False, allow_null=True,
        help_text=_("The new aspect ratio, width:height (the photo grows in one direction, evenly on both sides)."),
    )
    margins = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=20_000), min_length=4, max_length=4, required=False,
        help_text=_("Or pixels to add on each side: [left, top, right, bottom]."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["aspect"].choices = list(get_backend().expand_aspects())

    def validate(self, data: dict) -> dict:
        data = {name: value for name, value in data.items() if value is not None}
        if ("aspect" in data) == ("margins" in data):
            raise serializers.ValidationError({"aspect": gettext("Give either an aspect ratio or margins, not both.")
                                               if "aspect" in data else gettext("Give an aspect ratio or margins.")})
        if "margins" in data and not any(data["margins"]):
            raise serializers.ValidationError({"margins": gettext("At least one margin must be above 0.")})
        return data


@register
class Expand(Operation):
    """Grow the photo to an aspect ratio (`aspect`: 1:1, 4:5, 16:9 ...) or by margins in pixels (`margins`:
    [left, top, right, bottom]) and fill the new margins with the backdrop continued: by the shop's trained
    inpainting model where it beat the classical fills (edge colour, edge pixels repeated, OpenCV Telea) on the
    shop's held-out photos, else by the best of those (without a trained model: the edge colour). The photo's
    own pixels stay exactly where they were. The result is a new image, reviewed like generated ones."""

    name = "expand"
    order = 22
    label = _("Expand photo")
    serializer_class = ExpandOptions
    result_kind = "expanded"
    result_label = _("Expanded photo")
    model_kind = "inpaint"
    model_optional = True
    model_label = _("Repair (inpainting) model")
    action_name = "expand_photos"
    action_title = _("Expand photos")
    action_button = _("Expand")
    action_description = _("Expand photos to an aspect ratio (outpainting the backdrop)")

    def example_options(self, products: list) -> dict:
        return {"aspect": "1:1"}

    def load_models(self, options: dict, models) -> dict:
        return validated_choices(models, self.model_kind)

    def apply(self, photo, options: dict, inpainter):
        backend = get_backend()
        if options.get("aspect") and not any(backend.expand_margins(photo.size, aspect=options["aspect"], check=False)):
            raise JobError(gettext("The photo is %(aspect)s already: there is nothing to expand. Nothing was stored.")
                           % {"aspect": options["aspect"]})
        try:
            margins = backend.expand_margins(photo.size, aspect=options.get("aspect"), margins=options.get("margins"))
        except ValueError as exc:
            raise JobError(gettext("The photo cannot be expanded so: %(reason)s") % {"reason": exc}) from exc
        image, step = backend.expand_photo(photo, margins, options["_choices"], inpainter)
        image.info["imagegen"] = {"expand": {**step, "margins": list(margins), "choices_from": options["_choices_from"]},
                                  "model_used": step["method"] == "model"}
        return image

    def describe(self, options: dict) -> str:
        if options.get("aspect"):
            return gettext("expanded to %(aspect)s") % {"aspect": options["aspect"]}
        return gettext("expanded by %(margins)s pixels (left, top, right, bottom)") % {"margins": options["margins"]}

    def describe_result(self, options: dict, info: dict) -> str:
        return describe_with_step(self.describe(options), info, "expand")
