"""Distances between a real and a generated feature distribution: pure functions on N x D matrices.

Inputs may be torch tensors or numpy arrays; everything is computed in float64
on the CPU (covariances of a few hundred samples lose digits in float32, and
FID is a small difference of large traces).
"""

from __future__ import annotations

from typing import Any

import torch

# Pairwise distances are computed in row blocks so memory stays bounded.
CHUNK = 1024

Features = Any  # torch.Tensor | numpy.ndarray, N x D


def as_float64(features: Features, name: str = "features") -> torch.Tensor:
    """N x D float64 CPU tensor from a tensor or array."""
    x = torch.as_tensor(features).detach().to("cpu", torch.float64)
    if x.dim() != 2:
        raise ValueError(f"{name} must be an N x D matrix, got shape {tuple(x.shape)}")
    return x


def _check_pair(real: Features, fake: Features) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = as_float64(real, "real"), as_float64(fake, "fake")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature dims differ: real {x.shape[1]}, fake {y.shape[1]}")
    return x, y


def _sqrt_psd(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric PSD matrix via eigh (tiny negative eigenvalues clamped)."""
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance_from_stats(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) for Gaussians.

    tr((S1 S2)^(1/2)) is computed as tr((S1^(1/2) S2 S1^(1/2))^(1/2)): the two
    matrices are similar, and the second is symmetric PSD, so a symmetric
    eigendecomposition suffices (no scipy.linalg.sqrtm, no complex parts to
    discard, and it stays stable when covariances are singular because D > N).
    """
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64) for m in (mu1, mu2))
    sigma1, sigma2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    values = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0)
    trace_sqrt = values.sqrt().sum()
    distance = (mu1 - mu2).square().sum() + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt
    # Rounding can leave a tiny negative for identical inputs; a distance is >= 0.
    return max(float(distance), 0.0)


def mean_and_covariance(features: Features) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D) and unbiased covariance (D x D, divisor N - 1) in float64."""
    x = as_float64(features)
    if len(x) < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {len(x)}")
    mu = x.mean(dim=0)
    centred = x - mu
    return mu, centred.T @ centred / (len(x) - 1)


def frechet_distance(real_feats: Features, fake_feats: Features) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (FID on these features).

    Biased upward for small N (the bias shrinks ~1/N), so only compare values
    computed with similar sample counts and the same extractor.
    """
    x, y = _check_pair(real_feats, fake_feats)
    return frechet_distance_from_stats(*mean_and_covariance(x), *mean_and_covariance(y))


def _poly_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # The KID kernel of Binkowski et al. 2018: (x.y / d + 1)^3.
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def _mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    m, n = len(x), len(y)
    kxx, kyy, kxy = _poly_kernel(x, x), _poly_kernel(y, y), _poly_kernel(x, y)
    # Diagonals dropped: k(x, x) terms are what make the plain estimate biased.
    term_xx = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    term_yy = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(term_xx + term_yy - 2 * kxy.mean())


def kernel_inception_distance(
    real: Features,
    fake: Features,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID: unbiased polynomial-kernel MMD^2 over random subsets -> (mean, std).

    ``subset_size`` is capped at the smaller set's size. Unbiased, so it can be
    slightly negative when the distributions match, and it needs no Gaussian
    assumption, which makes it the better metric for small per-category sets.
    """
    x, y = _check_pair(real, fake)
    size = min(int(subset_size), len(x), len(y))
    if size < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(x)} real and {len(y)} fake")
    if subsets < 1:
        raise ValueError(f"subsets must be >= 1, got {subsets}")
    rng = torch.Generator(device="cpu").manual_seed(seed)
    values = torch.tensor(
        [
            _mmd2_unbiased(x[torch.randperm(len(x), generator=rng)[:size]], y[torch.randperm(len(y), generator=rng)[:size]])
            for _ in range(subsets)
        ],
        dtype=torch.float64,
    )
    std = float(values.std()) if subsets > 1 else 0.0
    return float(values.mean()), std


def knn_radii(features: Features, k: int) -> torch.Tensor:
    """Distance from each sample to its k-th nearest *other* sample in the same set."""
    x = as_float64(features)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(x) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} samples, got {len(x)}")
    radii = []
    for i in range(0, len(x), CHUNK):
        # Direct differences (no matmul shortcut) keep a sample's distance to itself exactly 0.
        block = torch.cdist(x[i : i + CHUNK], x, compute_mode="donot_use_mm_for_euclid_dist")
        # Position 0 of the sorted row is the sample itself (distance 0), so index k is the k-th neighbour.
        radii.append(block.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def _inside_counts(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """For every point, how many balls B(centre_i, radius_i) contain it."""
    counts = []
    for i in range(0, len(points), CHUNK):
        distances = torch.cdist(points[i : i + CHUNK], centres, compute_mode="donot_use_mm_for_euclid_dist")
        counts.append((distances <= radii[None, :]).sum(dim=1))
    return torch.cat(counts)


def precision_recall(real: Features, fake: Features, k: int = 5) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) -> (precision, recall).

    Each set's manifold is the union of balls reaching every sample's k-th
    nearest neighbour. Precision: share of fakes inside the real manifold
    (fidelity). Recall: share of reals inside the fake manifold (diversity).
    """
    x, y = _check_pair(real, fake)
    precision = (_inside_counts(y, x, knn_radii(x, k)) > 0).double().mean()
    recall = (_inside_counts(x, y, knn_radii(y, k)) > 0).double().mean()
    return float(precision), float(recall)


def density_coverage(real: Features, fake: Features, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020) -> (density, coverage).

    Both use only the real k-NN balls, so unlike precision/recall they are not
    inflated by fake outliers. Density: mean number of real balls holding a
    fake, divided by k (about 1 for matching distributions, can exceed 1).
    Coverage: share of real balls that hold at least one fake (in [0, 1]).
    """
    x, y = _check_pair(real, fake)
    radii = knn_radii(x, k)
    density = _inside_counts(y, x, radii).double().sum() / (k * len(y))
    covered = torch.zeros(len(x), dtype=torch.bool)
    for i in range(0, len(x), CHUNK):
        # Nearest fake to each real centre: covered when it lies inside that centre's ball.
        nearest = torch.cdist(x[i : i + CHUNK], y, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
        covered[i : i + CHUNK] = nearest <= radii[i : i + CHUNK]
    return float(density), float(covered.double().mean())
