"""Did the generator copy training photos? Nearest real neighbours of generated images.

With a few hundred photos a GAN can memorise some of them, and a shop must
not present a copied product photo as a new one. "Too close" has no absolute
scale in feature space, so the threshold is calibrated on the catalogue
itself: how close do *distinct* real photos get to each other? A generated
image closer to a training photo than (nearly) any two real photos are to
each other is flagged for a human to look at.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .distribution import CHUNK, Features, as_float64

DEFAULT_PERCENTILE = 1.0
# Pixel check resolution: coarse enough to ignore resampling noise and tiny
# shifts, fine enough that different products differ.
PIXEL_SIZE = 32


@dataclass
class NearCopies:
    """Result of a near-copy check; tensors are per generated image."""

    flags: torch.Tensor  # bool, N: closer than the threshold to some training image
    indices: torch.Tensor  # long, N: index of the nearest training image
    distances: torch.Tensor  # float64, N: distance to it
    threshold: float  # the distance below which an image counts as a near copy

    def to_dict(self) -> dict:
        """JSON-serialisable summary."""
        return {
            "threshold": self.threshold,
            "flagged": int(self.flags.sum()),
            "flagged_indices": [int(i) for i in self.flags.nonzero().flatten()],
            "nearest_real": [int(i) for i in self.indices],
            "distances": [float(d) for d in self.distances],
        }


def _cdist(x: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    # Direct differences, not the |x|^2 + |y|^2 - 2xy shortcut: that leaves an exact
    # copy at a rounding-error distance instead of 0, blurring the very case checked for.
    return torch.cdist(x, y, p=p, compute_mode="donot_use_mm_for_euclid_dist")


def _nearest(x: torch.Tensor, y: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
    if len(y) == 0:
        raise ValueError("no real images to compare with")
    indices, distances = [], []
    for i in range(0, len(x), CHUNK):
        found = _cdist(x[i : i + CHUNK], y, p).min(dim=1)
        indices.append(found.indices)
        distances.append(found.values)
    if not indices:
        return torch.empty(0, dtype=torch.long), torch.empty(0, dtype=torch.float64)
    return torch.cat(indices), torch.cat(distances)


def nearest_real(fake_feats: Features, real_feats: Features) -> tuple[torch.Tensor, torch.Tensor]:
    """For each generated feature vector: (index of the nearest real one, Euclidean distance)."""
    return _nearest(as_float64(fake_feats, "fake"), as_float64(real_feats, "real"), 2.0)


def _real_nn_distances(real: torch.Tensor, p: float) -> torch.Tensor:
    """Each real sample's distance to its nearest *other* real sample, exact duplicates skipped."""
    if len(real) < 2:
        raise ValueError("calibrating a copy threshold needs at least 2 real images")
    out = []
    for i in range(0, len(real), CHUNK):
        block = _cdist(real[i : i + CHUNK], real, p)
        rows = torch.arange(len(block))
        block[rows, rows + i] = float("inf")  # the sample itself
        # Zero distances left are duplicate photos in the catalogue; counting them
        # would calibrate the threshold to 0 and flag nothing but exact copies.
        block[block <= 0] = float("inf")
        out.append(block.min(dim=1).values)
    distances = torch.cat(out)
    distances = distances[torch.isfinite(distances)]
    if len(distances) == 0:
        raise ValueError("all real images are identical; cannot calibrate a copy threshold")
    return distances


def calibrate_threshold(real: torch.Tensor, *, percentile: float = DEFAULT_PERCENTILE, p: float = 2.0) -> float:
    """``percentile`` (0-100) of real-to-nearest-other-real distances."""
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    return float(torch.quantile(_real_nn_distances(real, p), percentile / 100.0))


def flag_near_copies(
    fake_feats: Features,
    real_feats: Features,
    *,
    threshold: float | None = None,
    percentile: float = DEFAULT_PERCENTILE,
) -> NearCopies:
    """Flag generated images whose nearest training image is closer than ``threshold`` (features).

    ``threshold=None`` calibrates it as the ``percentile``-th percentile of
    nearest-neighbour distances between distinct real training images: the
    default (1st percentile) flags what is closer than 99% of real photos are
    to their nearest other photo.
    """
    fake, real = as_float64(fake_feats, "fake"), as_float64(real_feats, "real")
    if threshold is None:
        threshold = calibrate_threshold(real, percentile=percentile)
    indices, distances = _nearest(fake, real, 2.0)
    return NearCopies(distances <= threshold, indices, distances, float(threshold))


def _two_nearest(x: torch.Tensor, y: torch.Tensor, p: float, *, leave_one_out: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of ``x``: distances to its nearest and second-nearest row of ``y``. With ``leave_one_out``
    (``x`` is ``y``) each row's own entry and its exact duplicates are skipped."""
    if len(y) < (3 if leave_one_out else 2):
        raise ValueError("a distance ratio needs at least 2 other real images")
    firsts, seconds = [], []
    for i in range(0, len(x), CHUNK):
        block = _cdist(x[i : i + CHUNK], y, p)
        if leave_one_out:
            rows = torch.arange(len(block))
            block[rows, rows + i] = float("inf")
            block[block <= 0] = float("inf")
        top = block.topk(2, dim=1, largest=False).values
        firsts.append(top[:, 0])
        seconds.append(top[:, 1])
    if not firsts:
        return torch.empty(0, dtype=torch.float64), torch.empty(0, dtype=torch.float64)
    return torch.cat(firsts), torch.cat(seconds)


def _ratio(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    # 0 when the nearest is at distance 0 (an exact copy), whatever the second.
    return torch.where(second > 0, first / second.clamp_min(1e-300), torch.zeros_like(first))


def distance_ratios(fake_feats: Features, real_feats: Features) -> torch.Tensor:
    """Per generated feature vector: distance to the nearest real one over the distance to the second nearest.

    A copy of one photo sits much closer to it than to any other photo (ratio near 0), while a new photo of
    the same kind sits about as close to its nearest two (ratio near 1). Scale-free, so it needs no absolute
    distance to mean anything, and it stays informative when a small catalogue makes the nearest-distance
    threshold tight."""
    real = as_float64(real_feats, "real")
    return _ratio(*_two_nearest(as_float64(fake_feats, "fake"), real, 2.0))


def calibrate_ratio_threshold(real_feats: Features, *, percentile: float = DEFAULT_PERCENTILE) -> float:
    """``percentile`` (0-100) of the real images' ratios to their nearest two *other* real images."""
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    real = as_float64(real_feats, "real")
    ratios = _ratio(*_two_nearest(real, real, 2.0, leave_one_out=True))
    ratios = ratios[torch.isfinite(ratios) & (ratios > 0)]
    if len(ratios) == 0:
        raise ValueError("too few distinct real images to calibrate a distance-ratio threshold")
    return float(torch.quantile(ratios, percentile / 100.0))


def _pixels(images: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 or [-1, 1] images -> N x (3 * size * size) float64 in [0, 1] at ``size`` px."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float().add(1.0).div(2.0)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(0, 1).flatten(1).double()


def pixel_near_copies(
    fake_images: torch.Tensor,
    real_images: torch.Tensor,
    *,
    size: int = PIXEL_SIZE,
    threshold: float | None = None,
    percentile: float = DEFAULT_PERCENTILE,
) -> NearCopies:
    """Second opinion in pixel space: mean absolute difference (0-1 scale) at ``size`` px.

    Independent of any learned extractor, so it catches copies the features
    may blur together (a classifier can map different items of one category
    close together) and is easy to explain. It misses flipped or shifted
    copies, which the feature check tends to catch. Threshold calibration is
    the same as ``flag_near_copies``, in mean-abs-diff units.
    """
    fake, real = _pixels(fake_images, size), _pixels(real_images, size)
    dim = real.shape[1]
    if threshold is None:
        # cdist with p=1 sums |diff|; divided by the pixel count it is the mean abs diff.
        threshold = calibrate_threshold(real, percentile=percentile, p=1.0) / dim
    indices, distances = _nearest(fake, real, 1.0)
    distances = distances / dim
    return NearCopies(distances <= threshold, indices, distances, float(threshold))
