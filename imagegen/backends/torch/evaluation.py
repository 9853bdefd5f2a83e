"""Measuring generators: the catalogue classifier whose frozen features the metrics use, and a version's
samples against real photos (distribution metrics, and near copies of its training photos)."""
from io import BytesIO

import torch
from mlcore.data import stack_images
from mlcore.metrics.copy_gate import CopyReference, rate_test
from mlcore.metrics.features import FeatureExtractor
from mlcore.metrics.features import train_feature_extractor as _train
from mlcore.metrics.report import DEFAULT_K, evaluate
from mlcore.plots import save_pair_grid

from .copies import reference_bytes

# The distribution metrics need more real photos than their k nearest neighbours.
MIN_REAL_PHOTOS = DEFAULT_K + 1


def train_feature_extractor(images, labels, classes: list[str], *, image_size: int, epochs: int, seed: int, device: str):
    return _train(images, labels, classes, image_size=image_size, epochs=epochs, seed=seed, device=device)


def load_feature_extractor(data: bytes) -> FeatureExtractor:
    """A feature extractor's frozen classifier from its checkpoint (``weights_only=True``)."""
    return FeatureExtractor.load(BytesIO(data))


def _samples(sampler, classes: list[str], per_class: int, seed: int):
    """``per_class`` samples per category (PIL), their class ids and their seeds."""
    fakes, labels, seeds = [], [], []
    for index, category in enumerate(classes):
        own = [seed + i for i in range(per_class)]
        fakes += sampler.generate_seeds(category, own)
        labels += [index] * per_class
        seeds += own
    return fakes, torch.tensor(labels, dtype=torch.long), seeds


def measure_generator(
    sampler, extractor, *, classes: list[str], image_size: int, train, real, held, per_class: int, seed: int,
    percentile: float, alpha: float, sheet_pairs: int,
) -> tuple[dict, bytes, bytes | None]:
    """Metrics of ``per_class`` samples per category against ``real``; near copies of ``train``, tested against
    how often the ``held`` photos (never trained on) are flagged. Returns (report, copy reference bytes, PNG of
    up to ``sheet_pairs`` flagged samples beside their nearest training photo, or None)."""
    pictures, labels, seeds = _samples(sampler, classes, per_class, seed)
    fakes = stack_images(pictures, image_size)
    report = evaluate(extractor, real.images, real.labels, fakes, labels, classes, seed=seed)

    # A shop must not publish a copy of a training photo as a new image.
    reference = CopyReference.build(extractor, train.images, percentile=percentile)
    by_features = reference.feature_check(extractor.features(fakes))
    by_pixels = reference.pixel_check(fakes)
    held_flagged, held_total = 0, 0
    if held is not None and held.images is not None:
        held_flagged = int(reference.feature_check(extractor.features(held.images)).flags.sum())
        held_total = len(held.images)
    gate = rate_test(int(by_features.flags.sum()), len(fakes), held_flagged, held_total, alpha=alpha, percentile=percentile)
    flagged = [int(i) for i in by_features.flags.nonzero().flatten()]
    report["near_copies"] = {
        "flagged": len(flagged),
        "threshold": reference.feature_threshold,
        "ratio_threshold": reference.ratio_threshold,
        "pixel_threshold": reference.pixel_threshold,
        "flagged_indices": flagged,
        "pixel_confirmed": int((by_features.flags & by_pixels.flags).sum()),
        **gate,
        "samples": [
            {
                "category": classes[int(labels[i])],
                "seed": seeds[i],
                "nearest_product": train.sources[int(by_features.indices[i])].product_id,
                "nearest_photo": train.sources[int(by_features.indices[i])].name,
                "feature_distance": round(float(by_features.distances[i]), 4),
                "ratio": round(float(by_features.ratios[i]), 4),
                "pixel_distance": round(float(by_pixels.distances[i]), 4),
                "pixel_agrees": bool(by_pixels.flags[i]),
            }
            for i in flagged[:sheet_pairs]
        ],
    }
    sheet = None
    if flagged:
        shown = flagged[:sheet_pairs]
        buf = BytesIO()
        save_pair_grid(fakes[shown], train.images[by_features.indices[shown]], buf)
        sheet = buf.getvalue()
    return report, reference_bytes(reference, [photo.product_id for photo in train.sources]), sheet


def enough_real_photos(count: int) -> bool:
    """Whether ``count`` real photos suffice for the distribution metrics."""
    return count >= MIN_REAL_PHOTOS
