"""The colour-statistics distance between a photo (or any look) and a look, in CIELAB units.

    D(x, y) = sum over c in (L*, a*, b*) of W1(x_c, y_c),
    W1(x_c, y_c) = integral_0^1 |F_x,c^-1(p) - F_y,c^-1(p)| dp  ~=  (1/K) sum_k |q_x,c(p_k) - q_y,c(p_k)|

with F^-1 the quantile functions of the marginals and p_k = (k + 0.5) / K the look's K = LEVELS quantile
levels (the midpoint rule; it is exactly the W1 distance between the two K-point quantile summaries). A
photo's marginals are those of ``look.statistics_of`` (its STATS_SIDE box-resampled copy, opaque pixels).
W1 is the mean absolute shift needed to turn one distribution into the other, so a uniform shift of the
whole photo by d in one channel adds d, and D = 0 means the three marginals agree. It ignores chroma and
zones (network inputs only) so that the number means one simple thing.
"""

from __future__ import annotations

import torch
from PIL import Image

from .look import Look, look_tensors, statistics_of, to_look

DISTANCE_CHANNELS = 3  # L*, a*, b*: the first three rows of the quantiles


def quantile_distance(q_x: torch.Tensor, q_y: torch.Tensor) -> torch.Tensor:
    """D of quantile tensors ``... x C x K`` (C >= 3, L*, a*, b* first), per leading index."""
    diff = (q_x[..., :DISTANCE_CHANNELS, :] - q_y[..., :DISTANCE_CHANNELS, :]).abs()
    return diff.mean(-1).sum(-1)


def look_distance(x: Look, y: Look) -> float:
    """D between two looks."""
    return float(quantile_distance(look_tensors(x)["quantiles"], look_tensors(y)["quantiles"]))


def image_look(image: Image.Image) -> Look:
    """The look of one photo (``look_of([image])``)."""
    return to_look(statistics_of(image), 1)


def image_distance(image: Image.Image, look: Look) -> float:
    """D between a photo's own look and ``look``."""
    return float(quantile_distance(statistics_of(image)["quantiles"], look_tensors(look)["quantiles"]))
