"""Brand look: map the photo to the colour and tone of a few reference photos the shop picked (the primary
photos of reference products), keeping shape and detail (``mlcore.brandlook``: image-adaptive colour
lookup tables trained on the shop's own photos)."""
from collections.abc import Callable
from functools import lru_cache

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from ...backends import get_backend
from ...conf import settings
from ...jobcore.errors import JobError
from ..products import product_model
from .base import Operation, register

MIN_REFERENCES, MAX_REFERENCES = 1, 12


def _with_photos(ids):
    """(id, primary photo name) of the products among ``ids`` that have a primary photo, by id."""
    field = settings.PRODUCT_IMAGE_FIELD
    rows = product_model().objects.filter(pk__in=ids).exclude(**{field: ""}).exclude(**{f"{field}__isnull": True})
    return tuple(rows.order_by("pk").values_list("pk", field))


class BrandLookOptions(serializers.Serializer):
    references = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=MIN_REFERENCES, max_length=MAX_REFERENCES,
        help_text="Ids of 1 to 12 products whose primary photos show the look (colour and tone) to give this one.",
    )

    def validate_references(self, value: list[int]) -> list[int]:
        references = sorted(set(value))
        found = {pk for pk, _ in _with_photos(references)}
        missing = [ref for ref in references if ref not in found]
        if missing:
            raise serializers.ValidationError(
                f"These products do not exist or have no photo: {', '.join(map(str, missing))}."
            )
        return references


@register
class BrandLook(Operation):
    """Map the photo to the colour and tone of the reference products' photos (the shop's brand look) with the
    shop's own trained colour-mapping model, keeping shape and detail. The result is a new image, reviewed
    like generated ones."""

    name = "brandlook"
    order = 40
    label = _("Brand look")
    serializer_class = BrandLookOptions
    result_kind = "brandlook"
    model_kind = "brandlook"
    model_label = _("Brand look model")
    path = "brand-look"
    action_name = "brand_look"
    action_button = _("Apply")
    action_description = _("Give photos the brand look of reference products")

    def example_options(self, products: list) -> dict:
        return {"references": [product.pk for product in products[-2:]]}

    def prepare(self, options: dict, read_photo: Callable) -> dict:
        """The look of the reference products' photos, read when the job runs."""
        return {**options, "look": _look_of(_with_photos(options["references"]), read_photo)}

    def apply(self, photo, options: dict, brand_look):
        return brand_look.apply(photo, options["look"])

    def describe(self, options: dict) -> str:
        return f"colour and tone of products {', '.join(map(str, options['references']))}"


@lru_cache(maxsize=32)
def _look_of(references: tuple[tuple[int, str], ...], read_photo: Callable):
    """Kept per worker process: one action over many products queues one job each with the same references,
    and each would otherwise read and decode the same photos again. A replaced photo has a new name, so a
    new key. The look is plain numbers and only read."""
    products = {p.pk: p for p in product_model().objects.filter(pk__in=[pk for pk, _ in references])}
    photos = [read_photo(products[pk]) for pk, _ in references if pk in products]
    if not photos:
        raise JobError(_("None of the reference products has a photo any more; choose other references."))
    return get_backend().brand_look_of(photos)
