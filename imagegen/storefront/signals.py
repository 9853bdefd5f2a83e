"""How the storefront follows the core, through signals only (the core never imports the storefront):

- an edit job queued for a segment (``parameters["segment"]``, ``services.personalize``) gets its image
  linked to the segment (``Variant``) in the transaction that stores it, or fails when the segment is gone;
- a product saved with a new photo gets its variants for every segment queued again
  (``services.request_variants`` skips the ones still current);
- the storefront forgets what it cached of a product when one of its variants is reviewed or deleted, or
  the product changes or goes.
"""
from django.db import transaction
from django.db.models import QuerySet
from django.db.models.signals import post_delete, post_save, pre_delete

from ..conf import settings
from ..jobcore.errors import JobError
from ..models import GeneratedImage
from ..services.products import product_model
from ..signals import edited_image_stored, images_reviewed
from .models import Segment, Variant
from .services.serving import forget_product


def _link_variant(sender, job, image, **kwargs) -> None:
    segment_id = job.parameters.get("segment")
    if segment_id is None:
        return
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise JobError("The shopper segment this variant was for no longer exists (the segments were refreshed).")
    Variant.objects.create(image=image, segment=segment)


def _photo_changed(sender, instance, created: bool, **kwargs) -> None:
    if created or kwargs.get("raw"):
        return
    # The storefront caches the original photo's URL with the arms.
    transaction.on_commit(lambda: forget_product(instance.pk))
    if not Segment.objects.exists():
        return
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and settings.PRODUCT_IMAGE_FIELD not in update_fields:
        return

    def queue() -> None:
        from .services import request_variants

        request_variants(type(instance).objects.filter(pk=instance.pk))

    transaction.on_commit(queue)


def _variant_deleted(sender, instance: Variant, origin=None, **kwargs) -> None:
    # Only deleting the image (or the link) takes away what the storefront may serve from its cache: a
    # segment's deletion (a refresh) leaves the images, and a product's deletion is _product_deleted's.
    deleted = origin.model if isinstance(origin, QuerySet) else type(origin)
    if origin is not None and deleted not in (GeneratedImage, Variant):
        return
    # Before the deletion (pre_delete): the image's row, and so its product, is still there.
    product_id = GeneratedImage.objects.filter(pk=instance.image_id).values_list("product_id", flat=True).first()
    if product_id is not None:
        # The storefront must not hand out the URL of a file that is gone.
        transaction.on_commit(lambda: forget_product(product_id))


def _variants_reviewed(sender, image_ids: list[int], **kwargs) -> None:
    # The storefront serves approved variants from its cache: it must see this decision at once.
    for product_id in set(Variant.objects.filter(image_id__in=image_ids).values_list("image__product_id", flat=True)):
        forget_product(product_id)


def _product_deleted(sender, instance, **kwargs) -> None:
    # Cached arms would keep serving the deleted product, and hand out impression tokens for it.
    product_id = instance.pk
    transaction.on_commit(lambda: forget_product(product_id))


def connect() -> None:
    edited_image_stored.connect(_link_variant, sender=GeneratedImage, dispatch_uid="imagegen-storefront-links-variant")
    images_reviewed.connect(_variants_reviewed, sender=GeneratedImage, dispatch_uid="imagegen-storefront-reviewed")
    post_save.connect(_photo_changed, sender=product_model(), dispatch_uid="imagegen-variants-follow-product")
    pre_delete.connect(_variant_deleted, sender=Variant, dispatch_uid="imagegen-storefront-forgets-variant")
    post_delete.connect(_product_deleted, sender=product_model(), dispatch_uid="imagegen-storefront-forgets-product")
