"""Personalized variants: for each shopper segment and product, the product's photo on a backdrop in the
segment's preferred colour (the photo operations' generated studio backdrop), made by edit jobs and
reviewed like every generated image. The product itself is never changed: only what is around it.

A variant is made again only when its inputs changed: the segment's colour moved, or the product's
photo was replaced. Rejected variants are not made again for the same inputs.
"""
from django.db.models import Model, QuerySet

from ..models import GeneratedImage, Job, Segment
from .editing import primary_photo_name, request_edit
from .products import product_model
from .taste import backdrop_colour


def variant_options(segment: Segment) -> dict:
    return {"background": backdrop_colour(segment), "backdrop": "studio"}


def _is_current(product: Model, segment: Segment, options: dict) -> bool:
    """Whether a variant (or a job making one) already exists for these inputs."""
    photo = primary_photo_name(product)
    made = GeneratedImage.objects.filter(product=product, segment=segment, source_image=photo[:255])
    if any(image.parameters.get("options", {}).get("background") == options["background"] for image in made):
        return True
    pending = Job.objects.filter(
        product=product, kind=Job.Kind.EDIT, state__in=[Job.State.QUEUED, Job.State.RUNNING], parameters__segment=segment.pk
    )
    return any(job.parameters.get("options", {}).get("background") == options["background"] for job in pending)


def request_variants(
    products: QuerySet | None = None, segments: QuerySet | None = None, *, user=None, send: bool = True
) -> list[Job]:
    """Queue the variants that are missing or out of date; the jobs queued."""
    products = product_model().objects.all() if products is None else products
    segments = Segment.objects.all() if segments is None else segments
    jobs = []
    for segment in segments:
        options = variant_options(segment)
        for product in products.iterator():
            if not primary_photo_name(product) or _is_current(product, segment, options):
                continue
            jobs.append(request_edit(product, "background", options=options, segment=segment, user=user, send=send))
    return jobs
