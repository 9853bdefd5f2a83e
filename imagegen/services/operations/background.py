"""Background: cut the product out and put it, centred and padded to marketplace rules, on pure white, a
brand colour, transparency, or a generated studio backdrop in white or the brand colour (``mlcore.background``). A segmentation network trained on the shop's photos
is used when one is active; without one the classical border-colour cut-out is."""
import re

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ...backends import get_backend
from ...jobcore.errors import JobError
from .base import Operation, register

_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
# The studio backdrop of "white": a light grey sweep (a white one would not show its shape).
STUDIO_WHITE = (236, 236, 236)
# Every product gets the same backdrop, grain included: one look across the catalogue.
STUDIO_SEED = 0


class BackgroundOptions(serializers.Serializer):
    background = serializers.RegexField(
        r"^(white|transparent|#[0-9a-fA-F]{6})$", default="white", max_length=11,
        help_text='"white" (pure #FFFFFF), "transparent", or a colour "#RRGGBB".',
    )
    fill = serializers.FloatField(
        min_value=0.3, max_value=1.0, default=0.85, help_text="Share of the frame's longer side the product fills."
    )
    shadow = serializers.BooleanField(
        default=False, help_text="A soft shadow under the product (the background is then no longer pure white there)."
    )
    size = serializers.IntegerField(
        min_value=64, max_value=4096, required=False, allow_null=True, default=None,
        help_text="Side of the square result in pixels; without it, the photo's longer side.",
    )
    backdrop = serializers.ChoiceField(
        choices=["plain", "studio"], default="plain",
        help_text='"plain": one flat colour; "studio": a generated studio sweep (wall bending into the floor) in '
        "the background colour (light grey for white), the same for every product. Not with transparent.",
    )

    def validate_background(self, value: str) -> str:
        # The whole value: the field's pattern lets a trailing newline through.
        if value not in ("white", "transparent") and not _COLOUR.fullmatch(value):
            raise serializers.ValidationError('Background must be "white", "transparent" or a colour "#RRGGBB".')
        return value.lower()

    def validate(self, data: dict) -> dict:
        if data.get("backdrop") == "studio" and data.get("background") == "transparent":
            raise serializers.ValidationError(
                {"backdrop": "A studio backdrop needs a colour: choose white or #RRGGBB as background."}
            )
        return data


def hex_rgb(name: str) -> tuple[int, int, int]:
    """(r, g, b) of a "#rrggbb" colour."""
    return tuple(int(name[i : i + 2], 16) for i in (1, 3, 5))


def apply(photo, options: dict, segmenter):
    """``photo`` on the background ``options`` name; ``segmenter`` cuts it out (the classical one when None)."""
    name = options["background"]
    canvas = (options["size"], options["size"]) if options["size"] else None
    try:
        studio = (STUDIO_WHITE if name == "white" else hex_rgb(name)) if options.get("backdrop") == "studio" else None
        return get_backend().place_on_background(
            photo, segmenter, background=name if name in ("white", "transparent") else hex_rgb(name),
            fill=options["fill"], canvas=canvas, shadow=options["shadow"], studio_colour=studio, studio_seed=STUDIO_SEED,
        )
    except ValueError as exc:
        # An empty cut-out: the product blends into its backdrop too well for the segmenter.
        raise JobError(f"The product could not be cut out of this photo ({exc}).") from exc


@register
class Background(Operation):
    """Cut the product out of the photo and put it, centred, on pure white (or a colour, or transparency),
    filling `fill` of the frame. The result is a new image, reviewed like generated ones."""

    name = "background"
    order = 30
    label = _("New background")
    serializer_class = BackgroundOptions
    result_kind = "background"
    model_kind = "segment"
    model_label = _("Background cut-out model")
    model_optional = True
    action_name = "new_background"
    action_button = _("Make")
    action_description = _("Put photos on a new background (white, colour)")
    admin_form = "imagegen.admin.operation_forms.BackgroundForm"

    def example_options(self, products: list) -> dict:
        return {"fill": 0.8, "size": 200}

    def apply(self, photo, options: dict, segmenter):
        return apply(photo, options, segmenter)

    def describe(self, options: dict) -> str:
        shadow = ", with a soft shadow" if options["shadow"] else ""
        on = f"a generated studio backdrop in {options['background']}" if options.get("backdrop") == "studio" else options["background"]
        return f"cut out and placed on {on}, filling {options['fill']:.0%} of the frame{shadow}"


def clean(options: dict) -> dict:
    """The complete background options (for code that applies the operation outside a job, e.g. the bench)."""
    return Background().clean(options)
