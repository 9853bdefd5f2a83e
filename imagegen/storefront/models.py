"""The storefront's tables. The first four were imagegen's until the storefront became an app of its own and
keep their table names (``imagegen_segment`` ...), so a database made before moved them without copying a
row (``migrations/0001_initial``). ``Variant`` took the place of the core's old ``GeneratedImage.segment``."""
from django.db import models

from ..conf import settings


class Segment(models.Model):
    """A group of shoppers with a similar taste, in the space of ``services.taste`` (product colour and
    backdrop colour). Personalized variants are made per segment and product, never per shopper."""

    index = models.PositiveIntegerField(unique=True, help_text="0 .. IMAGEGEN_SEGMENTS - 1, stable across refreshes.")
    centroid = models.JSONField(help_text="The segment's taste vector (see services.taste.FEATURES).")
    shoppers = models.PositiveIntegerField(default=0, help_text="Shoppers in it at the last refresh.")
    refreshed_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "imagegen_segment"
        ordering = ["index"]

    def __str__(self) -> str:
        return f"Segment {self.index}"


class Variant(models.Model):
    """A personalized variant: an image of imagegen's (the result of an edit job queued with
    ``parameters["segment"]``, ``services.personalize``) made for one segment. Deleting the segment deletes
    the link, not the image: it is then a plain edited image, shown to nobody by the storefront."""

    image = models.OneToOneField(
        "imagegen.GeneratedImage", primary_key=True, on_delete=models.CASCADE, related_name="storefront_variant"
    )
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="variants")

    def __str__(self) -> str:
        return f"Variant of image #{self.image_id} for segment #{self.segment_id}"


class Shopper(models.Model):
    """A pseudonymous shopper: only a keyed hash of the id the storefront sends is stored, never the id."""

    key = models.CharField(max_length=64, unique=True, help_text="HMAC-SHA256 of the storefront's shopper id.")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="members")
    opted_out = models.BooleanField(default=False, help_text="Gets the default images; no events are kept.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "imagegen_shopper"

    def __str__(self) -> str:
        return f"Shopper {self.key[:10]}…"


class ShopperEvent(models.Model):
    """One storefront event of a shopper; ``image`` is the variant shown (None: the original photo, or not
    known for an unverified event)."""

    class Kind(models.TextChoices):
        IMPRESSION = "impression", "Impression"
        VIEW = "view", "View"
        CLICK = "click", "Click"
        ADD_TO_CART = "add_to_cart", "Add to cart"
        PURCHASE = "purchase", "Purchase"

    shopper = models.ForeignKey(Shopper, on_delete=models.CASCADE, related_name="events")
    product = models.ForeignKey(settings.PRODUCT_MODEL, on_delete=models.CASCADE, related_name="+")
    image = models.ForeignKey("imagegen.GeneratedImage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    segment = models.ForeignKey(Segment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField(db_index=True)
    verified = models.BooleanField(
        default=False,
        help_text="Whether it carried a valid impression token (services.impressions); only verified events "
        "count for the A/B results and the segments.",
    )

    class Meta:
        db_table = "imagegen_shopperevent"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["shopper", "product", "kind"])]


class ArmStats(models.Model):
    """A/B counts of one arm for a product and a segment on one day; the bandit and the admin report read
    these. Plain numbers rather than foreign keys, so that a key is never NULL (NULLs never clash in a
    unique constraint) and a deleted variant's history stays countable."""

    NO_SEGMENT = -1  # shoppers without a segment (new, or before the first refresh)
    ORIGINAL = 0  # the product's own photo; other arms are GeneratedImage ids

    product = models.ForeignKey(settings.PRODUCT_MODEL, on_delete=models.CASCADE, related_name="+")
    segment_index = models.IntegerField()
    arm = models.BigIntegerField()
    day = models.DateField()
    impressions = models.PositiveIntegerField(default=0)
    clicks = models.PositiveIntegerField(default=0)
    add_to_carts = models.PositiveIntegerField(default=0)
    purchases = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "imagegen_armstats"
        verbose_name = "A/B result"
        verbose_name_plural = "A/B results"
        constraints = [
            models.UniqueConstraint(fields=["product", "segment_index", "arm", "day"], name="imagegen_armstats_unique"),
        ]
