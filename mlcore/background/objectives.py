"""The segmentation objective, as pure functions of tensors: BCE on logits plus soft Dice.

Why both:
- Binary cross-entropy on the logits (``binary_cross_entropy_with_logits``, numerically stable, never
  a sigmoid followed by a log) gives every pixel a well-scaled gradient from the first step and keeps
  the output a calibrated probability, so 0.5 is a meaningful threshold. Alone, it is dominated by
  whichever class has more pixels: a product filling 15% of a frame is learnt late and thin.
- Soft Dice, 1 - 2|P∩T| / (|P| + |T|) on probabilities, is an overlap measure (monotonically related
  to the IoU the benchmark reports) and does not care how many pixels the product has, because it is
  computed per image and then averaged: a small product counts as much as a large one. Alone, its
  gradients are erratic while predictions are near zero at the start.
The sum trains fast and optimises what is measured. Targets may be soft (alpha in [0, 1]).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Keeps Dice defined (and equal to 0) for an empty prediction of an empty target.
DICE_SMOOTH = 1.0


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - soft Dice per image (N x 1 x H x W logits and targets in [0, 1]), averaged over the batch."""
    probability = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    overlap = (probability * target).sum(dim=1)
    total = probability.sum(dim=1) + target.sum(dim=1)
    return (1.0 - (2.0 * overlap + DICE_SMOOTH) / (total + DICE_SMOOTH)).mean()


def segmentation_terms(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """{"loss": bce + dice_weight * dice, "bce": mean BCE per pixel, "dice": mean 1 - Dice per image}."""
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    bce = F.binary_cross_entropy_with_logits(logits, target)
    dice = soft_dice_loss(logits, target)
    return {"loss": bce + dice_weight * dice, "bce": bce, "dice": dice}


def mask_iou(predicted: torch.Tensor, target: torch.Tensor, threshold: float = 0.5) -> float:
    """Intersection over union of two alphas (any shape, values in [0, 1]) binarised at ``threshold``.

    Two empty masks agree perfectly (1.0)."""
    a, b = predicted >= threshold, target >= threshold
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else 1.0
