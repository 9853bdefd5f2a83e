"""Enhance: denoise, deblur, JPEG clean-up, exposure and colour correction, optionally upscaling x2 or x4,
by the restoration network trained on the shop's own photos (``mlcore.restoration``)."""
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .base import Operation, register


class EnhanceOptions(serializers.Serializer):
    upscale = serializers.ChoiceField(choices=[1, 2, 4], default=1, help_text="Enlarge the photo this many times.")


@register
class Enhance(Operation):
    """Denoise, deblur, remove JPEG artefacts and correct exposure and colour cast of the photo with the shop's
    own trained restoration model, optionally upscaling it x2 or x4. The result is a new image, reviewed
    like generated ones; the photo is not changed."""

    name = "enhance"
    order = 10
    label = _("Enhance photo")
    serializer_class = EnhanceOptions
    result_kind = "enhanced"
    result_label = _("Enhanced photo")
    model_kind = "restore"
    model_label = _("Enhancement (restoration) model")
    action_name = "enhance_photos"
    action_title = _("Enhance photos")
    action_button = _("Enhance")
    action_description = _("Enhance photos (denoise, sharpen, exposure, upscale)")

    def example_options(self, products: list) -> dict:
        return {"upscale": 2}

    def apply(self, photo, options: dict, restorer):
        return restorer.enhance(photo, upscale=options["upscale"])

    def describe(self, options: dict) -> str:
        return "restored" if options["upscale"] == 1 else f"restored and upscaled x{options['upscale']}"
