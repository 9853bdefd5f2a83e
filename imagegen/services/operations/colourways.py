"""Colourways: the product of a photo in other colours the shop sells, recoloured inside its cut-out matte
(shading, texture and highlights kept; every backdrop pixel keeps its bytes): ``mlcore.colourways``."""
from django.utils.translation import gettext, gettext_lazy as _
from rest_framework import serializers

from ...backends import get_backend
from ...jobcore.errors import JobError
from .base import Operation, register

MAX_COLOURS = 8
# The colour names' labels, so a shop working in another language can type them in its own words.
COLOUR_LABELS = {
    "black": _("black"), "grey": _("grey"), "white": _("white"), "beige": _("beige"), "brown": _("brown"),
    "red": _("red"), "burgundy": _("burgundy"), "pink": _("pink"), "orange": _("orange"), "yellow": _("yellow"),
    "green": _("green"), "olive": _("olive"), "teal": _("teal"), "light blue": _("light blue"), "blue": _("blue"),
    "navy": _("navy"), "purple": _("purple"),
}


def colour_key(colour: str) -> str:
    """A colour as stored: a colour name (English, as the backend knows it) or "#rrggbb"; a ValidationError
    for anything else. Names in the shop's language (``COLOUR_LABELS``) are taken too."""
    backend = get_backend()
    text = colour.strip().lower()
    by_label = {str(label).lower(): name for name, label in COLOUR_LABELS.items()}
    if text in by_label:
        return by_label[text]
    if text in backend.colour_names():
        return text
    try:
        rgb = backend.colour_rgb(text)
    except ValueError:
        raise serializers.ValidationError(
            gettext("Unknown colour “%(colour)s”: give #rrggbb or one of: %(names)s.") % {
                "colour": colour, "names": ", ".join(str(COLOUR_LABELS.get(n, n)) for n in backend.colour_names())}
        ) from None
    return "#%02x%02x%02x" % rgb


class ColourwaysOptions(serializers.Serializer):
    colours = serializers.ListField(
        child=serializers.CharField(max_length=32), min_length=1, max_length=MAX_COLOURS,
        help_text=_("The colours to show the product in: colour names (red, navy, ...) or #rrggbb; one image each."),
    )

    def validate_colours(self, value: list[str]) -> list[str]:
        keys = [colour_key(colour) for colour in value]
        if len(set(keys)) != len(keys):
            raise serializers.ValidationError(gettext("A colour is given twice."))
        return keys


@register
class Colourways(Operation):
    """Show the product in other colours the shop sells (`colours`: names or #rrggbb, one image each): the
    product is cut out (by the shop's trained cut-out model, else on a plain backdrop by its border colour)
    and recoloured inside its soft matte, keeping its shading, texture and highlights; every backdrop pixel
    keeps its bytes. The results are new images, reviewed like generated ones: publish only colours the
    product is really made in."""

    name = "colourways"
    order = 25
    label = _("Colourways")
    serializer_class = ColourwaysOptions
    result_kind = "colourway"
    result_label = _("Colourway")
    model_kind = "segment"
    model_optional = True
    model_label = _("Background cut-out model")
    action_name = "make_colourways"
    action_button = _("Make colourways")
    action_description = _("Show the products in other colours (colourways)")

    def example_options(self, products: list) -> dict:
        return {"colours": ["navy"]}

    def results(self, photo, options: dict, segmenter) -> list:
        return [(index, self.recoloured(photo, colour, segmenter)) for index, colour in enumerate(options["colours"])]

    def apply(self, photo, options: dict, segmenter):
        return self.recoloured(photo, options["colours"][0], segmenter)

    def recoloured(self, photo, colour: str, segmenter):
        try:
            image, measured = get_backend().recolour_product(photo, segmenter, colour)
        except ValueError as exc:
            raise JobError(gettext("The product could not be recoloured: %(reason)s") % {"reason": exc}) from exc
        image.info["imagegen"] = {"colour": colour, "colourway": measured}
        return image

    def describe(self, options: dict) -> str:
        return gettext("the product recoloured in %(colours)s") % {"colours": ", ".join(map(colour_label, options["colours"]))}

    def describe_result(self, options: dict, info: dict) -> str:
        return gettext("the product recoloured in %(colour)s") % {"colour": colour_label(info.get("colour", ""))}


def colour_label(colour: str) -> str:
    return str(COLOUR_LABELS.get(colour, colour))
