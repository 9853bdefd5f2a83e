"""Deciding what counts as a copy of a training photo: per version (a rate test) and per image.

The near-copy threshold is a low percentile of the distances between distinct
real photos, so it flags about that share of *new real photos* too: a flagged
sample alone proves nothing. Two decisions are built on it:

* **A model version** is refused only when its samples are flagged
  significantly more often than held-out real photos are under the same
  threshold: Fisher's exact test, one-sided, at level ``alpha``. Without
  held-out photos the reference rate is the calibration percentile itself
  (an exact binomial test).
* **One generated image** is a near copy when both feature criteria hold:
  it is closer to a training photo than the distance threshold *and* much
  closer to it than to the second-nearest. Either alone is enough for the
  version test, where false flags cancel against the held-out photos'; an
  image is rejected on its own, so it needs both. In a catalogue of a dozen
  photos the 1st percentile is really the smallest of a dozen values, and an
  early generator's featureless samples, close to several photos at once,
  passed the distance criterion alone. The pixel check (no learned part) is
  reported beside it, not obeyed: ``bench/near_copy.py`` measured it catching
  27% of lightly edited copies, and in tiny catalogues its threshold is so
  loose that it took a 4-step generator's noise for copies.

The feature check flags an image whose nearest training photo is closer than
the distance threshold, or much closer than the second-nearest one (the
ratio of the two below its own threshold, calibrated the same way). The
ratio is what catches edited copies in a small catalogue, where the
percentile of a few hundred nearest-neighbour distances is nearly their
minimum and so very tight.

``CopyReference`` keeps what the per-image check needs of the training photos
(their features and 32 px thumbnails, with both calibrated thresholds), so a
worker checks new images without reading the training photos again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .memorization import (
    DEFAULT_PERCENTILE,
    PIXEL_SIZE,
    NearCopies,
    calibrate_ratio_threshold,
    calibrate_threshold,
    distance_ratios,
    flag_near_copies,
    pixel_near_copies,
)

DEFAULT_ALPHA = 0.01
REFERENCE_KIND = "copy-reference"


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_greater(hits_a: int, total_a: int, hits_b: int, total_b: int) -> float:
    """One-sided p-value of Fisher's exact test that group a's rate is greater than group b's.

    Conditioned on the total number of hits, the hits in group a are hypergeometric under the null of
    equal rates; the p-value is the chance of at least ``hits_a`` of them landing in a."""
    for hits, total in ((hits_a, total_a), (hits_b, total_b)):
        if not 0 <= hits <= total:
            raise ValueError(f"hits must lie in [0, total], got {hits} of {total}")
    hits, population = hits_a + hits_b, total_a + total_b
    if hits_a == 0:
        return 1.0
    denominator = _log_comb(population, total_a)
    upper = min(hits, total_a)
    terms = [
        _log_comb(hits, k) + _log_comb(population - hits, total_a - k) - denominator
        for k in range(hits_a, upper + 1)
        if total_a - k <= population - hits
    ]
    return min(1.0, math.fsum(math.exp(t) for t in terms))


def binomial_greater(hits: int, total: int, rate: float) -> float:
    """One-sided p-value of the exact binomial test that the rate behind ``hits`` of ``total`` exceeds ``rate``."""
    if not 0 <= hits <= total:
        raise ValueError(f"hits must lie in [0, total], got {hits} of {total}")
    if hits == 0:
        return 1.0
    if rate <= 0.0:
        return 0.0
    if rate >= 1.0:
        return 1.0
    log_p, log_q = math.log(rate), math.log1p(-rate)
    return min(1.0, math.fsum(math.exp(_log_comb(total, k) + k * log_p + (total - k) * log_q) for k in range(hits, total + 1)))


def rate_test(
    generated_flagged: int,
    generated_total: int,
    real_flagged: int,
    real_total: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    percentile: float = DEFAULT_PERCENTILE,
) -> dict[str, Any]:
    """Are generated samples flagged as near copies more often than real photos the model never saw?

    Returns the counts, the test's name, its p-value and whether the rate is significantly higher at
    ``alpha`` (JSON-ready)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    if real_total > 0:
        test = "Fisher's exact test, one-sided"
        p_value = fisher_greater(generated_flagged, generated_total, real_flagged, real_total)
    else:
        test = f"exact binomial test against the calibration rate {percentile / 100:g}, one-sided"
        p_value = binomial_greater(generated_flagged, generated_total, percentile / 100.0)
    return {
        "generated_flagged": int(generated_flagged),
        "generated_total": int(generated_total),
        "held_out_flagged": int(real_flagged),
        "held_out_total": int(real_total),
        "test": test,
        "alpha": float(alpha),
        "p_value": float(p_value),
        "significant": bool(p_value < alpha),
    }


def thumbnails(images: torch.Tensor, size: int = PIXEL_SIZE) -> torch.Tensor:
    """uint8 or [-1, 1] N x 3 x H x W -> uint8 N x 3 x size x size (antialiased), what the pixel check compares."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float().add(1.0).div(2.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1).mul(255.0).round().to(torch.uint8)


@dataclass
class CopyVerdict:
    """One image's near-copy check: each opinion's distance and threshold, and the nearest training row."""

    copy: bool
    nearest: int  # index into the reference's training photos (feature space)
    feature_distance: float
    feature_threshold: float
    ratio: float  # nearest over second-nearest training photo's feature distance
    ratio_threshold: float
    pixel_distance: float
    pixel_threshold: float

    @property
    def by_features(self) -> bool:
        """The version test's flag: either feature criterion."""
        return self.feature_distance <= self.feature_threshold or self.ratio <= self.ratio_threshold

    @property
    def by_pixels(self) -> bool:
        return self.pixel_distance <= self.pixel_threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "copy": self.copy,
            "nearest": self.nearest,
            "feature_distance": round(self.feature_distance, 4),
            "feature_threshold": round(self.feature_threshold, 4),
            "ratio": round(self.ratio, 4),
            "ratio_threshold": round(self.ratio_threshold, 4),
            "pixel_distance": round(self.pixel_distance, 4),
            "pixel_threshold": round(self.pixel_threshold, 4),
        }


@dataclass
class FeatureMatches:
    """The feature check of several images: flagged when the nearest training photo is closer than the
    distance threshold, or much closer than the second nearest (ratio below the ratio threshold)."""

    flags: torch.Tensor  # bool N
    indices: torch.Tensor  # long N: nearest training photo
    distances: torch.Tensor  # float64 N
    ratios: torch.Tensor  # float64 N


@dataclass
class CopyReference:
    """The training photos as the near-copy checks see them, with the thresholds calibrated on them."""

    features: torch.Tensor  # float32 N x D, through the extractor named by ``extractor_hash``
    pixels: torch.Tensor  # uint8 N x 3 x PIXEL_SIZE x PIXEL_SIZE
    feature_threshold: float
    ratio_threshold: float
    pixel_threshold: float
    extractor_hash: str
    percentile: float = DEFAULT_PERCENTILE

    @classmethod
    def build(cls, extractor, images: torch.Tensor, *, percentile: float = DEFAULT_PERCENTILE) -> CopyReference:
        """From the training photos (uint8 N x 3 x S x S, at least 3) and the frozen feature extractor; each
        threshold is the ``percentile`` of the training photos' own values against the other photos."""
        features = extractor.features(images).float()
        pixels = thumbnails(images)
        feature_threshold = calibrate_threshold(features.double(), percentile=percentile)
        ratio_threshold = calibrate_ratio_threshold(features, percentile=percentile)
        pixel_threshold = pixel_near_copies(pixels[:1], pixels, percentile=percentile).threshold
        return cls(features, pixels, feature_threshold, ratio_threshold, pixel_threshold, extractor.content_hash, percentile)

    def feature_check(self, features: torch.Tensor) -> FeatureMatches:
        nearest = flag_near_copies(features, self.features, threshold=self.feature_threshold)
        ratios = distance_ratios(features, self.features)
        return FeatureMatches(nearest.flags | (ratios <= self.ratio_threshold), nearest.indices, nearest.distances, ratios)

    def pixel_check(self, images: torch.Tensor) -> NearCopies:
        return pixel_near_copies(thumbnails(images), self.pixels, threshold=self.pixel_threshold)

    def check(self, extractor, images: torch.Tensor) -> list[CopyVerdict]:
        """Per image (uint8 or [-1, 1]): a near copy when both feature criteria hold (the pixel check's
        distance is reported beside it)."""
        if extractor.content_hash != self.extractor_hash:
            raise ValueError("the feature extractor is not the one this reference was built with")
        by_features = self.feature_check(extractor.features(images))
        by_pixels = self.pixel_check(images)
        return [
            CopyVerdict(
                copy=bool(by_features.distances[i] <= self.feature_threshold and by_features.ratios[i] <= self.ratio_threshold),
                nearest=int(by_features.indices[i]),
                feature_distance=float(by_features.distances[i]),
                feature_threshold=self.feature_threshold,
                ratio=float(by_features.ratios[i]),
                ratio_threshold=self.ratio_threshold,
                pixel_distance=float(by_pixels.distances[i]),
                pixel_threshold=self.pixel_threshold,
            )
            for i in range(len(images))
        ]

    def state(self) -> dict[str, Any]:
        """Plain tensors and numbers, loadable with ``weights_only=True`` (``mlcore.checkpoint``)."""
        return {
            "kind": REFERENCE_KIND,
            "config": {"percentile": self.percentile, "pixel_size": int(self.pixels.shape[-1])},
            "features": self.features.contiguous(),
            "pixels": self.pixels.contiguous(),
            "feature_threshold": self.feature_threshold,
            "ratio_threshold": self.ratio_threshold,
            "pixel_threshold": self.pixel_threshold,
            "extractor_hash": self.extractor_hash,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CopyReference:
        if state.get("kind") != REFERENCE_KIND:
            raise ValueError(f"not a copy reference: {state.get('kind')!r}")
        return cls(
            features=state["features"].float(),
            pixels=state["pixels"].to(torch.uint8),
            feature_threshold=float(state["feature_threshold"]),
            ratio_threshold=float(state["ratio_threshold"]),
            pixel_threshold=float(state["pixel_threshold"]),
            extractor_hash=str(state["extractor_hash"]),
            percentile=float(state["config"]["percentile"]),
        )
