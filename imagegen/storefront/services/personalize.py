"""Personalized variants: for each shopper segment and product, the product's photo on a backdrop in the
segment's preferred colour (the photo operations' generated studio backdrop), made by edit jobs and
reviewed like every generated image. The product itself is never changed: only what is around it.

A variant is made again only when its inputs changed: the segment's colour moved by more than
``IMAGEGEN_VARIANT_REMAKE_DELTA_E`` (CIE76 delta E; k-means centroids drift a little at every refresh, and
a re-make per drift would be a job for every product), or the product's photo was replaced. Rejected
variants are not made again for the same inputs.

The jobs of one call are created with one bulk insert per segment and sent as ``imagegen.run_jobs``
messages of ``IMAGEGEN_BULK_BATCH_SIZE`` jobs (``jobcore.groups.send_batches``), not one message each.
``BulkOperation`` is not used: it only knows "generate" (one generator, count and seed per product), while a
variant is an edit with per-segment options, and it would add an expansion task for work that is already
in the background (the segment refresh).
"""
import math

from django.db import transaction
from django.db.models import QuerySet

from ...backends import get_backend
from ...conf import settings
from ...jobcore.groups import send_batches
from ...models import GeneratedImage, Job
from ...services import operations
from ...services.operations.background import hex_rgb
from ...services.products import product_model
from ..models import Segment
from .taste import backdrop_colour

OPERATION = "background"


def variant_options(segment: Segment) -> dict:
    return {"background": backdrop_colour(segment), "backdrop": "studio"}


def delta_e(first: str, second: str) -> float:
    """CIE76 colour difference of two "#rrggbb" colours (inf when one is not such a colour)."""
    try:
        labs = [get_backend().colour_lab(hex_rgb(c)) for c in (first, second)]
    except (TypeError, ValueError, IndexError):
        return math.inf
    return math.dist(*labs)


def _made_colours(segment: Segment, product_ids: list[int]) -> tuple[dict, dict]:
    """({(product id, source photo): [backdrop colours of its variants]}, {product id: [colours of pending
    jobs]}) for one segment, in two queries whatever the number of products."""
    made: dict[tuple[int, str], list[str]] = {}
    for product_id, source, parameters in GeneratedImage.objects.filter(
        storefront_variant__segment=segment, product_id__in=product_ids
    ).values_list("product_id", "source_image", "parameters"):
        made.setdefault((product_id, source), []).append((parameters or {}).get("options", {}).get("background"))
    pending: dict[int, list[str]] = {}
    for product_id, parameters in Job.objects.filter(
        product_id__in=product_ids, kind=Job.Kind.EDIT, state__in=[Job.State.QUEUED, Job.State.RUNNING],
        parameters__segment=segment.pk,
    ).values_list("product_id", "parameters"):
        pending.setdefault(product_id, []).append(parameters.get("options", {}).get("background"))
    return made, pending


def request_variants(
    products: QuerySet | None = None, segments: QuerySet | None = None, *, user=None, send: bool = True
) -> list[Job]:
    """Queue the variants that are missing or out of date; the jobs queued."""
    products = product_model().objects.all() if products is None else products
    segments = Segment.objects.all() if segments is None else segments
    threshold = settings.VARIANT_REMAKE_DELTA_E
    operation = operations.get(OPERATION)
    requested_by = user if user is not None and user.is_authenticated else None
    photos = {pk: name for pk, name in products.values_list("pk", settings.PRODUCT_IMAGE_FIELD) if name}
    jobs: list[Job] = []
    with transaction.atomic():
        for segment in segments:
            options = operation.clean(variant_options(segment))
            colour = options["background"]
            made, pending = _made_colours(segment, list(photos))
            for product_id, photo in photos.items():
                existing = [*made.get((product_id, photo[:255]), []), *pending.get(product_id, [])]
                if any(delta_e(c, colour) <= threshold for c in existing):
                    continue
                jobs.append(Job(
                    kind=Job.Kind.EDIT, product_id=product_id, requested_by=requested_by,
                    parameters={"operation": operation.name, "options": options, "source": {"type": "product"},
                                "segment": segment.pk},
                ))
        created = Job.objects.bulk_create(jobs)
        if send and created:
            ids = [job.pk for job in created]
            transaction.on_commit(lambda: send_batches(ids))
    return created


SCENE_OPERATION = "scene"


def request_scene_variants(
    scene_set, products: QuerySet | None = None, segments: QuerySet | None = None, *, variants: int = 1, seed: int = 0,
    user=None, send: bool = True,
) -> list[Job]:
    """Queue variants that put each product in ``scene_set``'s scenes for each segment (a segment's scene
    variant, which the A/B test then compares with the original photo and the segment's other variants).
    Products that already have a variant of this set for the segment (made from their current photo) or a
    pending job for it are skipped; ``ValidationError`` for bad options (nothing is queued)."""
    products = product_model().objects.all() if products is None else products
    segments = Segment.objects.all() if segments is None else segments
    operation = operations.get(SCENE_OPERATION)
    options = operation.clean({"scene_set": scene_set.pk, "variants": variants, "seed": seed})
    requested_by = user if user is not None and user.is_authenticated else None
    photos = {pk: name for pk, name in products.values_list("pk", settings.PRODUCT_IMAGE_FIELD) if name}
    jobs: list[Job] = []
    with transaction.atomic():
        for segment in segments:
            made = set(GeneratedImage.objects.filter(
                storefront_variant__segment=segment, product_id__in=list(photos), parameters__scene_set=scene_set.pk,
            ).values_list("product_id", "source_image"))
            pending = set(Job.objects.filter(
                product_id__in=list(photos), kind=Job.Kind.EDIT, state__in=[Job.State.QUEUED, Job.State.RUNNING],
                parameters__segment=segment.pk, parameters__options__scene_set=scene_set.pk,
            ).values_list("product_id", flat=True))
            jobs += [
                Job(kind=Job.Kind.EDIT, product_id=product_id, requested_by=requested_by,
                    parameters={"operation": operation.name, "options": options, "source": {"type": "product"},
                                "segment": segment.pk})
                for product_id, photo in photos.items()
                if (product_id, photo[:255]) not in made and product_id not in pending
            ]
        created = Job.objects.bulk_create(jobs)
        if send and created:
            ids = [job.pk for job in created]
            transaction.on_commit(lambda: send_batches(ids))
    return created
