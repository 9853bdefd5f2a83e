"""Brand look: map the photo to the colour and tone of a few reference photos the shop picked (the primary
photos of reference products), keeping shape and detail (``mlcore.brandlook``: image-adaptive colour
lookup tables trained on the shop's own photos)."""
from functools import lru_cache

from django.core.exceptions import ValidationError

from ...models import GeneratedImage
from .base import Operation

MIN_REFERENCES, MAX_REFERENCES = 1, 12


def clean(options: dict) -> dict:
    from ..products import product_model

    unknown = set(options) - {"references"}
    if unknown:
        raise ValidationError({"options": f"Unknown option(s) for brand look: {', '.join(sorted(unknown))}."})
    references = options.get("references")
    if (
        not isinstance(references, list)
        or not MIN_REFERENCES <= len(references) <= MAX_REFERENCES
        or any(isinstance(ref, bool) or not isinstance(ref, int) for ref in references)
    ):
        raise ValidationError(
            {"references": f"Give {MIN_REFERENCES} to {MAX_REFERENCES} ids of products whose photos show the look."}
        )
    references = sorted(set(references))
    from ..editing import primary_photo_name

    found = {p.pk: p for p in product_model().objects.filter(pk__in=references)}
    missing = [ref for ref in references if ref not in found or not primary_photo_name(found[ref])]
    if missing:
        raise ValidationError({"references": f"These products do not exist or have no photo: {', '.join(map(str, missing))}."})
    return {"references": references}


def prepare(options: dict) -> dict:
    """The look of the reference products' photos, read when the job runs."""
    from ..editing import primary_photo_name
    from ..products import product_model

    references = product_model().objects.filter(pk__in=options["references"]).order_by("pk")
    return {**options, "look": _look_of(tuple((p.pk, primary_photo_name(p)) for p in references))}


@lru_cache(maxsize=32)
def _look_of(references: tuple[tuple[int, str], ...]):
    """Kept per worker process: one action over many products queues one job each with the same references,
    and each would otherwise read and decode the same photos again. A replaced photo has a new name, so a
    new key. The look is plain numbers and only read."""
    from mlcore.brandlook.look import look_of

    from ..editing import read_primary_photo
    from ..products import product_model

    products = {p.pk: p for p in product_model().objects.filter(pk__in=[pk for pk, _ in references])}
    return look_of([read_primary_photo(products[pk]) for pk, _ in references if pk in products])


def apply(photo, options: dict, brand_look):
    return brand_look.apply(photo, options["look"])


def describe(options: dict) -> str:
    return f"colour and tone of products {', '.join(map(str, options['references']))}"


OPERATION = Operation(
    name="brandlook",
    label="Brand look",
    result_kind=GeneratedImage.Kind.BRANDLOOK,
    clean=clean,
    apply=apply,
    describe=describe,
    model_kind="brandlook",
    prepare=prepare,
)
