"""One JSON-ready evaluation of generated images against real ones, overall and per category."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .distribution import density_coverage, frechet_distance, kernel_inception_distance, precision_recall
from .features import FeatureExtractor

# Neighbours for precision/recall and density/coverage; a category needs more images than this to be measured.
DEFAULT_K = 5


def _metrics(real: torch.Tensor, fake: torch.Tensor, *, k: int, kid_subsets: int, kid_subset_size: int, seed: int) -> dict[str, Any]:
    kid_mean, kid_std = kernel_inception_distance(real, fake, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    precision, recall = precision_recall(real, fake, k=k)
    density, coverage = density_coverage(real, fake, k=k)
    return {
        "count_real": len(real),
        "count_fake": len(fake),
        "fid": frechet_distance(real, fake),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
    }


def evaluate(
    extractor: FeatureExtractor,
    real_images: torch.Tensor,
    real_labels: torch.Tensor,
    fake_images: torch.Tensor,
    fake_labels: torch.Tensor,
    classes: Sequence[str],
    *,
    k: int = DEFAULT_K,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    min_per_category: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Classifier-FID, KID, precision, recall, density and coverage, overall and per category.

    Images are uint8 [0, 255] or float [-1, 1]. A category is skipped (its
    entry holds counts and a ``note``) when either side has fewer than
    ``min_per_category`` images (default ``k + 1``: the k-NN radii need k
    other samples; FID's covariance needs 2, and with far fewer images than
    feature dimensions it is dominated by estimation bias, so compare
    per-category FIDs only across runs with similar counts). Every value is
    a plain int, float, str, list or dict.
    """
    classes = list(classes)
    minimum = max(int(min_per_category if min_per_category is not None else k + 1), k + 1, 2)
    real_labels, fake_labels = real_labels.cpu().long(), fake_labels.cpu().long()
    if len(real_labels) != len(real_images) or len(fake_labels) != len(fake_images):
        raise ValueError("each image set needs exactly one label per image")
    real = extractor.features(real_images).double()
    fake = extractor.features(fake_images).double()
    options = dict(k=k, kid_subsets=kid_subsets, kid_subset_size=kid_subset_size, seed=seed)

    if min(len(real), len(fake)) < minimum:
        raise ValueError(f"need at least {minimum} real and fake images, got {len(real)} and {len(fake)}")
    per_category: dict[str, dict[str, Any]] = {}
    for class_id, name in enumerate(classes):
        real_c, fake_c = real[real_labels == class_id], fake[fake_labels == class_id]
        if min(len(real_c), len(fake_c)) < minimum:
            per_category[name] = {
                "count_real": len(real_c),
                "count_fake": len(fake_c),
                "note": f"skipped: fewer than {minimum} real or generated images in this category",
            }
        else:
            per_category[name] = _metrics(real_c, fake_c, **options)
    return {
        "extractor": {
            "version_id": extractor.version_id,
            "content_hash": extractor.content_hash,
            "feature_dim": extractor.feature_dim,
            "image_size": extractor.image_size,
            "classes": list(extractor.classes),
        },
        "settings": {"k": k, "kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size, "min_per_category": minimum, "seed": seed},
        "overall": _metrics(real, fake, **options),
        "per_category": per_category,
    }
