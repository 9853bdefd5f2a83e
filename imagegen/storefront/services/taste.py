"""Shopper taste and segments.

Taste lives in a small space of image features a variant can move along without changing what the
product is: the colour of the product and the colour of its backdrop, each as mean CIELAB (L/100,
a/128, b/128) of a thumbnail's centre and border. A shopper's taste is the engagement-weighted mean of
the features of the images they looked at, clicked, carted and bought; k-means (seeded k-means++) groups
the shoppers into ``IMAGEGEN_SEGMENTS`` segments. A refresh keeps each segment's index where its new
centroid is nearest its old one, so variants made for a segment stay meaningful.

The tensor maths (the features, the means, k-means) are the backend's (``imagegen.backends``, its
``taste_*`` methods); this module reads and writes the rows.
"""
import logging
from functools import lru_cache

from django.db import transaction
from django.db.models import Model
from PIL import Image

from ...backends import get_backend
from ...conf import settings
from ...models import GeneratedImage, imagegen_storage
from ...services.products import field_at, product_model
from ..models import Segment, Shopper, ShopperEvent

logger = logging.getLogger(__name__)

FEATURES = ("product_L", "product_a", "product_b", "backdrop_L", "backdrop_a", "backdrop_b")
# What an event says about taste: an impression says nothing (the shop chose it), a purchase most.
EVENT_WEIGHTS = {"impression": 0.0, "view": 1.0, "click": 2.0, "add_to_cart": 4.0, "purchase": 6.0}


def features_of(image: Image.Image) -> list[float]:
    """The taste-space features of a photo or variant (see ``FEATURES``; the backend computes them)."""
    return get_backend().taste_features(image)


@lru_cache(maxsize=4096)
def _features_of_file(storage_name: str, kind: str) -> tuple[float, ...] | None:
    storage = imagegen_storage() if kind == "variant" else field_at(product_model(), settings.PRODUCT_IMAGE_FIELD).storage
    try:
        with storage.open(storage_name, "rb") as fh, Image.open(fh) as image:
            return tuple(features_of(image))
    except (OSError, ValueError) as exc:
        logger.info("no taste features for %s: %s", storage_name, exc)
        return None


def product_features(product: Model) -> tuple[float, ...] | None:
    name = getattr(getattr(product, settings.PRODUCT_IMAGE_FIELD, None), "name", "")
    return _features_of_file(name, "product") if name else None


def variant_features(image: GeneratedImage) -> tuple[float, ...] | None:
    return _features_of_file(image.image.name, "variant") if image.image else None


def shopper_tastes(shopper_ids: list[int] | None = None) -> dict[int, tuple[list[float], float]]:
    """{shopper id: (taste vector, total event weight)} of shoppers with verified events (all, or
    ``shopper_ids``)."""
    # Unverified events are anybody's word (services.impressions): they must not steer a segment.
    events = ShopperEvent.objects.filter(verified=True).exclude(kind="impression").select_related("image")
    if shopper_ids is not None:
        events = events.filter(shopper_id__in=shopper_ids)
    products = {p.pk: p for p in product_model().objects.filter(pk__in=events.values("product_id"))}

    def weighted():
        for event in events.iterator():
            weight = EVENT_WEIGHTS[event.kind]
            features = variant_features(event.image) if event.image is not None else None
            if features is None and event.product_id in products:
                features = product_features(products[event.product_id])
            if features is None or weight == 0:
                continue
            yield event.shopper_id, weight, features

    return get_backend().mean_tastes(weighted(), len(FEATURES))


def _stable_order(new: list[list[float]], old: dict[int, list[float]]) -> list[int]:
    """For each new centroid, the index it takes: the nearest free old index first, then fresh ones."""
    indexes: list[int | None] = [None] * len(new)
    free = dict(old)
    distances = get_backend().taste_distances(new, list(old.values())) if old else [[] for _ in new]
    pairs = sorted((row[n], i, index) for i, row in enumerate(distances) for n, index in enumerate(old))
    for _, i, index in pairs:
        if indexes[i] is None and index in free:
            indexes[i] = index
            del free[index]
    fresh = iter(j for j in range(len(new) + len(old)) if j not in old)
    return [index if index is not None else next(fresh) for index in indexes]


def refresh_segments(seed: int = 0) -> dict:
    """Group the shoppers with enough events into segments; the rest keep none (default images)."""
    shoppers = dict(Shopper.objects.filter(opted_out=False).values_list("pk", "key"))
    tastes = {sid: t for sid, t in shopper_tastes(list(shoppers)).items() if t[1] >= settings.SEGMENT_MIN_EVENTS}
    with transaction.atomic():
        if not tastes:
            Shopper.objects.update(segment=None)
            Segment.objects.all().delete()
            return {"segments": 0, "shoppers": 0}
        # Sorted by key: the same events and seed give the same segments, whatever the database's order.
        order = sorted(tastes, key=lambda sid: shoppers[sid])
        centroids, assignment = get_backend().cluster_tastes([tastes[sid][0] for sid in order], settings.SEGMENTS, seed)
        old = {s.index: s.centroid for s in Segment.objects.all()}
        indexes = _stable_order(centroids, old)
        Segment.objects.exclude(index__in=indexes).delete()
        segments = {}
        for j, index in enumerate(indexes):
            members = assignment.count(j)
            segment, _ = Segment.objects.update_or_create(
                index=index, defaults={"centroid": [round(float(v), 5) for v in centroids[j]], "shoppers": members}
            )
            segments[j] = segment
        Shopper.objects.exclude(pk__in=order).update(segment=None)
        for j, segment in segments.items():
            Shopper.objects.filter(pk__in=[order[i] for i in range(len(order)) if assignment[i] == j]).update(segment=segment)
    logger.info("segments refreshed: %d segments over %d shoppers", len(segments), len(order))
    return {"segments": len(segments), "shoppers": len(order)}


def assign_new_shoppers() -> int:
    """Put shoppers without a segment who now have enough events into the nearest existing segment."""
    segments = list(Segment.objects.all())
    if not segments:
        return 0
    waiting = list(Shopper.objects.filter(opted_out=False, segment__isnull=True).values_list("pk", flat=True))
    tastes = {sid: t for sid, t in shopper_tastes(waiting).items() if t[1] >= settings.SEGMENT_MIN_EVENTS}
    nearest = get_backend().nearest_tastes([taste for taste, _ in tastes.values()], [s.centroid for s in segments])
    for sid, index in zip(tastes, nearest):
        Shopper.objects.filter(pk=sid).update(segment=segments[index])
    return len(tastes)


def backdrop_colour(segment: Segment) -> str:
    """The segment's preferred backdrop as "#rrggbb" (its centroid's backdrop colour, from CIELAB)."""
    return get_backend().taste_colour(segment.centroid[3:6])
