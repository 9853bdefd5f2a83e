"""Training sets: a selection's photos decoded into the tensors a generator learns from (and is measured on)."""
import logging
from dataclasses import dataclass, field
from typing import Any

from ..backends import get_backend
from .decoded_photos import decode_photo, decoded_photo_cache
from .products import ProductPhoto

logger = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    images: Any  # uint8 tensor N x 3 x S x S
    labels: Any  # long tensor N of class ids
    classes: list[str]
    skipped: list[str] = field(default_factory=list)  # "name: reason" of photos that could not be read
    attributes: list[dict] = field(default_factory=list)  # per image; colour read off the photo when missing
    texts: list[str] = field(default_factory=list)  # per image: its product's own text
    sources: list[ProductPhoto] = field(default_factory=list)  # per image: the photo it was read from
    held_out: list[ProductPhoto] = field(default_factory=list)  # selected photos kept out of training

    @property
    def categories(self) -> list[str]:
        return [self.classes[int(i)] for i in self.labels]


def load_training_set(photos: list[ProductPhoto], image_size: int, classes: list[str] | None = None) -> TrainingSet:
    """Decode the photos into one tensor (through the decoded-photo cache); unreadable ones are skipped and
    listed, not fatal."""
    cache = decoded_photo_cache()
    classes = classes or sorted({photo.category for photo in photos})
    index = {name: i for i, name in enumerate(classes)}
    pictures, labels, skipped, attributes, texts, sources = [], [], [], [], [], []
    for photo in photos:
        if photo.category not in index:
            skipped.append(f"{photo.name}: category “{photo.category}” is not one the model was trained on")
            continue
        try:
            pixels, colour = decode_photo(photo, image_size, cache)
        except (OSError, ValueError) as exc:
            skipped.append(f"{photo.name}: {exc}")
            continue
        pictures.append(pixels)
        labels.append(index[photo.category])
        described = dict(photo.attributes)
        if "colour" not in described:
            described["colour"] = colour
        attributes.append(described)
        texts.append(photo.text)
        sources.append(photo)
    if cache is not None:
        cache.prune()
        logger.info("decoded photos: %d from the cache, %d decoded", cache.hits, cache.misses)
    if not pictures:
        return TrainingSet(images=None, labels=None, classes=classes, skipped=skipped)
    images, label_ids = get_backend().stack_training_set(pictures, labels)
    return TrainingSet(
        images=images,
        labels=label_ids,
        classes=classes,
        skipped=skipped,
        attributes=attributes,
        texts=texts,
        sources=sources,
    )
