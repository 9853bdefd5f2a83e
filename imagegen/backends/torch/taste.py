"""Shoppers' taste for the storefront (``imagegen.storefront``): colour features of images and the segments'
clustering, in PyTorch. Lists in, lists out: the storefront never sees a tensor.

The taste space: the colour of the product and of its backdrop, each as mean CIELAB (L/100, a/128, b/128)
of a thumbnail's centre and border (``taste_features``). The backend imports this module when one of
these is first asked for, so a process that only records storefront events never loads torch.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from mlcore.cielab import srgb_to_lab
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from .light import LAB_SCALE

THUMBNAIL = 64
# The border ring (backdrop) and the centre box (product), as shares of the thumbnail's side.
BORDER_SHARE = 0.1
CENTRE_SHARE = 0.5
KMEANS_ITERATIONS = 50


def taste_features(image: Image.Image) -> list[float]:
    """The taste-space features of a photo or variant: product L, a, b, then backdrop L, a, b."""
    thumb = image.convert("RGB").resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BOX)
    lab = srgb_to_lab(pil_to_tensor(thumb).float() / 255.0)
    ring = max(1, round(BORDER_SHARE * THUMBNAIL))
    border = torch.ones(THUMBNAIL, THUMBNAIL, dtype=torch.bool)
    border[ring:-ring, ring:-ring] = False
    lo, hi = round((1 - CENTRE_SHARE) / 2 * THUMBNAIL), round((1 + CENTRE_SHARE) / 2 * THUMBNAIL)
    centre = lab[:, lo:hi, lo:hi].reshape(3, -1).mean(dim=1)
    backdrop = lab[:, border].mean(dim=1)
    scale = torch.tensor(LAB_SCALE)
    return [round(float(v), 5) for v in torch.cat((centre / scale, backdrop / scale))]


def mean_tastes(weighted: Iterable[tuple[int, float, Sequence[float]]], size: int) -> dict[int, tuple[list[float], float]]:
    """{owner: (weighted mean of its feature vectors, total weight)} of ``(owner, weight, features)``
    triples, read once in their order (a shopper's events, streamed)."""
    sums: dict[int, torch.Tensor] = {}
    weights: dict[int, float] = {}
    for owner, weight, features in weighted:
        sums[owner] = sums.get(owner, torch.zeros(size)) + weight * torch.tensor(features)
        weights[owner] = weights.get(owner, 0.0) + weight
    return {owner: ((sums[owner] / weights[owner]).tolist(), weights[owner]) for owner in sums}


def cluster_tastes(points: list[list[float]], k: int, seed: int) -> tuple[list[list[float]], list[int]]:
    """(centroids, each point's centroid) by k-means with seeded k-means++ seeding; there are
    min(k, distinct points) centroids."""
    centroids, assignment = _kmeans(torch.tensor(points), k, seed)
    return centroids.tolist(), assignment.tolist()


def taste_distances(first: list[list[float]], second: list[list[float]]) -> list[list[float]]:
    """Euclidean distance of each vector of ``first`` to each of ``second`` (one row per ``first``)."""
    rows = [torch.tensor(v) for v in first]
    columns = [torch.tensor(v) for v in second]
    return [[float(torch.dist(row, column)) for column in columns] for row in rows]


def nearest_tastes(points: list[list[float]], centroids: list[list[float]]) -> list[int]:
    """For each point, the index of its nearest centroid."""
    centres = torch.tensor(centroids)
    # One point at a time: cdist switches to a matrix-product method for larger inputs, whose rounding
    # could pick another centroid at a tie.
    return [int(torch.cdist(torch.tensor([point]), centres).argmin()) for point in points]


def _kmeans(points, k: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    k = min(k, len(torch.unique(points, dim=0)))
    centroids = points[torch.randint(len(points), (1,), generator=generator)]
    while len(centroids) < k:
        distance = torch.cdist(points, centroids).min(dim=1).values ** 2
        chosen = torch.multinomial(distance / distance.sum(), 1, generator=generator)
        centroids = torch.cat((centroids, points[chosen]))
    for _ in range(KMEANS_ITERATIONS):
        assignment = torch.cdist(points, centroids).argmin(dim=1)
        moved = torch.stack([
            points[assignment == j].mean(dim=0) if bool((assignment == j).any()) else centroids[j] for j in range(k)
        ])
        if torch.allclose(moved, centroids):
            break
        centroids = moved
    return centroids, torch.cdist(points, centroids).argmin(dim=1)
