"""Which selected products a generator never trains on: the photos its metrics and near-copy test measure against.

Products, not photos, are held out (a product's gallery photos are near copies of each other, and one of them
in training would make the others look copied), per category (every category keeps its share), and by a hash
of the product id (the same products every run, so versions trained on the same selection are measured on
the same held-out photos and their metrics compare).
"""
import hashlib
from collections.abc import Sequence

from ..conf import settings
from .products import ProductPhoto


def _rank(product_id: int) -> str:
    return hashlib.sha256(f"imagegen-held-out:{product_id}".encode()).hexdigest()


def split(photos: Sequence[ProductPhoto], share: float | None = None) -> tuple[list[ProductPhoto], list[ProductPhoto]]:
    """(photos to train on, held-out photos): about ``share`` (IMAGEGEN_HELD_OUT_SHARE) of each category's
    products, rounded, and at least one product left to train on in each; none held out when fewer than
    IMAGEGEN_MIN_TRAINING_IMAGES photos would remain to train on."""
    share = settings.HELD_OUT_SHARE if share is None else share
    by_category: dict[str, set[int]] = {}
    for photo in photos:
        by_category.setdefault(photo.category, set()).add(photo.product_id)
    held: set[int] = set()
    for ids in by_category.values():
        count = min(round(len(ids) * share), len(ids) - 1)
        held.update(sorted(ids, key=_rank)[: max(count, 0)])
    train = [photo for photo in photos if photo.product_id not in held]
    if not held or len(train) < settings.MIN_TRAINING_IMAGES:
        return list(photos), []
    return train, [photo for photo in photos if photo.product_id in held]
