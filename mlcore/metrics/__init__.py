"""Evaluation of generated images without downloaded weights.

The feature extractor is a small classifier trained on the shop's own photos
(``features``); on its features: FID/KID/precision/recall/density/coverage
(``distribution``), near-copy detection (``memorization``), Classification
Accuracy Score (``cas``), and a JSON-ready report (``report``).
"""

from .cas import classification_accuracy_score
from .distribution import (
    density_coverage,
    frechet_distance,
    frechet_distance_from_stats,
    kernel_inception_distance,
    precision_recall,
)
from .features import FeatureExtractor, train_feature_extractor
from .memorization import NearCopies, flag_near_copies, nearest_real, pixel_near_copies
from .report import evaluate

__all__ = [
    "FeatureExtractor",
    "NearCopies",
    "classification_accuracy_score",
    "density_coverage",
    "evaluate",
    "flag_near_copies",
    "frechet_distance",
    "frechet_distance_from_stats",
    "kernel_inception_distance",
    "nearest_real",
    "pixel_near_copies",
    "precision_recall",
    "train_feature_extractor",
]
