"""Approving and rejecting generated images (only approved ones reach the storefront)."""
from django.db.models import QuerySet
from django.utils import timezone

from ..models import GeneratedImage
from ..signals import images_reviewed


def review(images: QuerySet | GeneratedImage, decision: str, user=None) -> int:
    """Set the review state of one image or a queryset of them; returns how many changed."""
    if decision not in (GeneratedImage.ReviewState.APPROVED, GeneratedImage.ReviewState.REJECTED):
        raise ValueError(f"Unknown review decision {decision!r}; use 'approved' or 'rejected'.")
    if isinstance(images, GeneratedImage):
        images = GeneratedImage.objects.filter(pk=images.pk)
    changing = images.exclude(review_state=decision)
    # Listeners (the storefront serves approved variants from its cache) must see this decision at once.
    ids = list(changing.values_list("pk", flat=True)) if images_reviewed.has_listeners(GeneratedImage) else []
    changed = changing.update(
        review_state=decision,
        reviewed_by=user if user is not None and user.is_authenticated else None,
        reviewed_at=timezone.now(),
    )
    if changed and ids:
        images_reviewed.send(sender=GeneratedImage, image_ids=ids)
    return changed


def images_visible_to(user=None) -> QuerySet:
    """Generated images this user may see: all for reviewers, approved ones for everyone else."""
    images = GeneratedImage.objects.select_related("model_version")
    if user is not None and user.is_authenticated and user.is_staff and user.has_perm("imagegen.view_generatedimage"):
        return images
    return images.filter(review_state=GeneratedImage.ReviewState.APPROVED)


def visible_images(product_id: int, user=None) -> QuerySet:
    """The product's generated images this user may see."""
    return images_visible_to(user).filter(product_id=product_id)
