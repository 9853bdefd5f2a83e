"""Differentiable augmentation (DiffAugment, Zhao et al. 2020).

With a few hundred photos the discriminator memorises the training set within
minutes. Augmenting real AND fake images, in both the D and the G step, with
operations that gradients can pass through, keeps it honest without the
generator learning to produce augmented-looking images.

All randomness is drawn from the ``torch.Generator`` passed in, on that
generator's device (the trainer uses a CPU one), then moved to the images'
device: the same seed gives the same augmentations on any device.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def _rand(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    values = torch.rand(shape, generator=generator, device=generator.device)
    return values.to(device=like.device, dtype=like.dtype)


def _randint(low: int, high: int, shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> torch.Tensor:
    values = torch.randint(low, high, shape, generator=generator, device=generator.device)
    return values.to(device)


def color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random brightness, saturation and contrast, per image (x in [-1, 1])."""
    n = x.shape[0]
    x = x + (_rand((n, 1, 1, 1), generator, x) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand((n, 1, 1, 1), generator, x) * 2.0) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand((n, 1, 1, 1), generator, x) + 0.5) + mean


def translation(x: torch.Tensor, generator: torch.Generator, ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size, filling with zeros."""
    n, _, h, w = x.shape
    max_dy, max_dx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = _randint(-max_dy, max_dy + 1, (n, 1, 1), generator, x.device)
    dx = _randint(-max_dx, max_dx + 1, (n, 1, 1), generator, x.device)
    # Index into a copy padded by one zero pixel; out-of-range reads clamp onto that border.
    rows = (torch.arange(h, device=x.device)[None, :, None] + dy + 1).clamp(0, h + 1)
    cols = (torch.arange(w, device=x.device)[None, None, :] + dx + 1).clamp(0, w + 1)
    batch = torch.arange(n, device=x.device)[:, None, None]
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, generator: torch.Generator, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    """Zero one random rectangle of ``ratio`` x the image size per image."""
    n, _, h, w = x.shape
    cut_h, cut_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = _randint(0, h + (1 - cut_h % 2), (n, 1, 1), generator, x.device) - cut_h // 2
    left = _randint(0, w + (1 - cut_w % 2), (n, 1, 1), generator, x.device) - cut_w // 2
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTS: dict[str, Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}


def parse_policy(policy: str | Sequence[str]) -> list[str]:
    """``"color,cutout"`` -> ``["color", "cutout"]``; unknown names raise ``ValueError``."""
    names = [p.strip() for p in policy.split(",")] if isinstance(policy, str) else list(policy)
    names = [name for name in names if name]
    unknown = [name for name in names if name not in AUGMENTS]
    if unknown:
        raise ValueError(f"unknown augmentation(s) {unknown}; known: {sorted(AUGMENTS)}")
    return names


def diff_augment(images: torch.Tensor, policy: str | Sequence[str], generator: torch.Generator) -> torch.Tensor:
    """Apply the policy's augmentations in order; an empty policy returns ``images``."""
    for name in parse_policy(policy):
        images = AUGMENTS[name](images, generator)
    return images.contiguous()
