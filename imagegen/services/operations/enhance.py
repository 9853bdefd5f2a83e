"""Enhance: named corrections (exposure, colour cast, denoise, JPEG clean-up, deblur) or "auto", which measures
what the photo needs, and enlargement x2 or x4. Each task runs what won it on the shop's held-out photos when
the restoration model was validated (``mlcore.restoration.validation``): the trained model only where it beat
the best classical tool, that tool where it beat the untouched photo, else nothing. The result says which ran."""
from django.utils.translation import gettext, gettext_lazy as _
from rest_framework import serializers

from ...backends import get_backend
from ...jobcore.errors import JobError
from ..validated_choices import describe_steps, task_label, validated_choices
from .base import Operation, register

AUTO = "auto"
# The corrections, in the order they run (mlcore.restoration.tasks.CORRECTIONS); enlargement is ``upscale``.
TASKS = {
    "exposure": _("Exposure"),
    "colour": _("Colour cast"),
    "denoise": _("Denoise"),
    "jpeg": _("JPEG clean-up"),
    "deblur": _("Deblur"),
}


class EnhanceOptions(serializers.Serializer):
    tasks = serializers.MultipleChoiceField(
        choices=[(AUTO, _("Automatic: what the photo needs")), *TASKS.items()], default=[AUTO],
        help_text=_("The corrections to make, or “auto” (also when empty) to measure which the photo needs."),
    )
    upscale = serializers.ChoiceField(choices=[1, 2, 4], default=1, help_text=_("Enlarge the photo this many times."))

    def validate_tasks(self, value) -> list[str]:
        # A form posted without the field gives an empty list (DRF reads multipart lists with getlist).
        value = set(value) or {AUTO}
        if AUTO in value and len(value) > 1:
            raise serializers.ValidationError(gettext("“auto” chooses the tasks itself: give it alone."))
        return [AUTO] if AUTO in value else [name for name in TASKS if name in value]


@register
class Enhance(Operation):
    """Correct exposure and colour cast, denoise, clean up JPEG artefacts and deblur the photo (`tasks`, or
    `auto`: the photo is measured for what it needs), and enlarge it x2 or x4 (`upscale`). Each task runs what
    won it on the shop's held-out photos when the restoration model was trained: the model where it beat the
    best classical tool, else that tool, else nothing (the result's `enhance.steps` says which ran). Without a
    trained model the classical tools run. The result is a new image, reviewed like generated ones."""

    name = "enhance"
    order = 10
    label = _("Enhance photo")
    serializer_class = EnhanceOptions
    result_kind = "enhanced"
    result_label = _("Enhanced photo")
    model_kind = "restore"
    model_optional = True
    model_label = _("Enhancement (restoration) model")
    action_name = "enhance_photos"
    action_title = _("Enhance photos")
    action_button = _("Enhance")
    action_description = _("Enhance photos (exposure, colour, denoise, sharpen, upscale)")

    def example_options(self, products: list) -> dict:
        return {"tasks": ["exposure", "denoise"], "upscale": 2}

    def load_models(self, options: dict, models) -> dict:
        return validated_choices(models, self.model_kind)

    def apply(self, photo, options: dict, restorer):
        # Jobs stored before Enhance had tasks (bulk operations still expanding, say) ran everything: "auto".
        tasks = options.get("tasks") or [AUTO]
        measured = None
        if tasks == [AUTO]:
            tasks, measured = get_backend().needed_enhancements(photo)
            if not tasks and options["upscale"] == 1:
                raise JobError(gettext(
                    "The photo needs no enhancement: no noise, blur, JPEG artefacts, exposure error or colour cast "
                    "was measured in it. Nothing was stored."))
        choices = options["_choices"]
        try:
            image, steps = get_backend().enhance_photo(
                photo, tasks, upscale=options["upscale"], choices=choices, restorer=restorer if choices else None)
        except ValueError as exc:
            raise JobError(gettext("The photo cannot be enhanced so: %(reason)s") % {"reason": exc}) from exc
        if all(step["method"] == "unchanged" for step in steps):
            raise JobError(gettext(
                "Enhance left the photo unchanged: on the shop's held-out photos neither the trained model nor a "
                "classical tool improved %(tasks)s. Nothing was stored.") % {"tasks": ", ".join(map(task_label, tasks))})
        image.info["imagegen"] = {"enhance": {
            "tasks": tasks, "steps": steps, "measurements": measured, "choices_from": options["_choices_from"],
        }, "model_used": any(step["method"] == "model" for step in steps)}
        return image

    def describe(self, options: dict) -> str:
        tasks = ", ".join(map(task_label, options.get("tasks") or [AUTO]))
        if options["upscale"] == 1:
            return gettext("enhanced: %(tasks)s") % {"tasks": tasks}
        return gettext("enhanced: %(tasks)s; enlarged x%(scale)s") % {"tasks": tasks, "scale": options["upscale"]}

    def describe_result(self, options: dict, info: dict) -> str:
        return describe_steps(info.get("enhance", {}).get("steps", [])) or self.describe(options)
