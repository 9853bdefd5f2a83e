"""Personalized variants follow the product: when a product is saved with a new photo, its variants for
every segment are queued again (``services.request_variants`` skips the ones still current), and the
storefront forgets what it cached of the product."""
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .conf import settings
from .services.products import product_model


def _photo_changed(sender, instance, created: bool, **kwargs) -> None:
    from .models import Segment
    from .services.storefront import forget_product

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
        from . import services

        services.request_variants(type(instance).objects.filter(pk=instance.pk))

    transaction.on_commit(queue)


def _variant_deleted(sender, instance, **kwargs) -> None:
    from .services.storefront import forget_product

    if instance.segment_id is not None:
        # The storefront must not hand out the URL of a file that is gone.
        transaction.on_commit(lambda: forget_product(instance.product_id))


def _product_deleted(sender, instance, **kwargs) -> None:
    from .services.storefront import forget_product

    # Cached arms would keep serving the deleted product, and hand out impression tokens for it.
    product_id = instance.pk
    transaction.on_commit(lambda: forget_product(product_id))


def _files_follow_row(sender, instance, using: str, **kwargs) -> None:
    from .services.cleanup import delete_files_on_commit

    # After the commit: a rolled back delete keeps its files.
    delete_files_on_commit(instance, using)


def connect() -> None:
    from .models import GeneratedImage, Job, ModelVersion

    post_save.connect(_photo_changed, sender=product_model(), dispatch_uid="imagegen-variants-follow-product")
    post_delete.connect(_variant_deleted, sender=GeneratedImage, dispatch_uid="imagegen-storefront-forgets-variant")
    post_delete.connect(_product_deleted, sender=product_model(), dispatch_uid="imagegen-storefront-forgets-product")
    for model in (GeneratedImage, ModelVersion, Job):
        post_delete.connect(_files_follow_row, sender=model, dispatch_uid=f"imagegen-files-follow-{model.__name__}")
