"""What the storefront shows a shopper: the approved variants of a product for the shopper's segment and
the original photo, one of them chosen by the bandit; the impression is recorded for the A/B counts.

Reads precomputed rows through the cache only (``IMAGEGEN_STOREFRONT_CACHE_SECONDS``): no model, no GPU,
no image decoding. Unknown shoppers, shoppers without a segment or who opted out, segments without
approved variants, and deleted variants all fall back to the original photo.
"""
import random

from django.core.cache import cache
from django.db.models import Sum
from django.utils import timezone

from ...conf import settings
from ...models import GeneratedImage
from ...services.products import field_at, product_model
from ..models import ArmStats, Segment
from . import bandit, impressions, shoppers

NO_SEGMENT = ArmStats.NO_SEGMENT


class UnknownProduct(LookupError):
    pass


def _arms(product_id: int, segment: int) -> dict:
    cache_key = f"imagegen:arms:{product_id}:{segment}"
    arms = cache.get(cache_key)
    if arms is None:
        product = product_model().objects.filter(pk=product_id).first()
        if product is None:
            arms = {"missing": True}
        else:
            photo = getattr(product, settings.PRODUCT_IMAGE_FIELD, None)
            storage = field_at(product_model(), settings.PRODUCT_IMAGE_FIELD).storage
            variants = []
            if segment != NO_SEGMENT:
                variants = [
                    [image.pk, image.image.url]
                    for image in GeneratedImage.objects.filter(
                        product_id=product_id, storefront_variant__segment__index=segment, review_state=GeneratedImage.ReviewState.APPROVED
                    ).order_by("id")
                ]
            stats = {
                row["arm"]: [row["impressions"] or 0, row["clicks"] or 0]
                for row in ArmStats.objects.filter(product_id=product_id, segment_index=segment)
                .values("arm").annotate(impressions=Sum("impressions"), clicks=Sum("clicks"))
            }
            arms = {
                "original": storage.url(photo.name) if getattr(photo, "name", "") else None,
                "variants": variants,
                "stats": stats,
            }
        cache.set(cache_key, arms, settings.STOREFRONT_CACHE_SECONDS)
    if arms.get("missing"):
        raise UnknownProduct(product_id)
    return arms


def forget_product(product_id: int) -> None:
    """Drop the cached arms of a product (a variant was approved, rejected or deleted, or the product was)."""
    cache.delete_many([f"imagegen:arms:{product_id}:{index}" for index in [NO_SEGMENT, *range(_segment_bound())]])


def _segment_bound() -> int:
    top = Segment.objects.order_by("-index").values_list("index", flat=True).first()
    return max(settings.SEGMENTS, (top or 0) + 1)


def images_for(product_id: int, shopper_id: str | None, *, rng: random.Random | None = None) -> dict:
    """The images to show, the chosen one first, and the impression token of the chosen one for the
    shopper's events (None without a shopper, or for one who opted out); raises ``UnknownProduct`` and (for
    a malformed shopper id) ``ValidationError``."""
    key = shoppers.shopper_key(shopper_id) if shopper_id is not None else None
    segment = shoppers.segment_of(key) if key else NO_SEGMENT
    opted_out = segment == shoppers.OPTED_OUT
    arms = _arms(product_id, NO_SEGMENT if opted_out else segment)
    original = {"id": None, "url": arms["original"], "arm": "original"}
    variants = [{"id": pk, "url": url, "arm": "variant"} for pk, url in arms["variants"]]
    candidates = [original, *variants] if arms["original"] else variants
    if not candidates:
        return {"product": product_id, "segment": None, "personalized": False, "shown": None, "images": [], "token": None}
    chosen = candidates[0]
    if len(candidates) > 1 and not opted_out:
        stats = {int(k): v for k, v in arms["stats"].items()}
        choice = bandit.choose(
            [bandit.Arm(c["id"] or ArmStats.ORIGINAL, *stats.get(c["id"] or ArmStats.ORIGINAL, (0, 0))) for c in candidates],
            rng or random.Random(),
            settings.BANDIT_EXPLORATION,
        )
        chosen = next(c for c in candidates if (c["id"] or ArmStats.ORIGINAL) == choice)
    token = None
    if key and not opted_out:
        shoppers.record_impression(key, product_id, chosen["id"], timezone.now())
        token = impressions.issue(key, product_id, chosen["id"])
    return {
        "product": product_id,
        "segment": None if opted_out or segment == NO_SEGMENT else segment,
        "personalized": chosen["arm"] == "variant",
        "shown": chosen,
        "images": [chosen, *[c for c in candidates if c is not chosen]],
        "token": token,
    }
