"""Binary morphology on H x W bool tensors: dilation/erosion, connected components, hole filling.

Pure torch (no OpenCV or SciPy at run time). Structuring elements are squares; at the working
resolutions used here (a few hundred pixels) a disc would change the result by a pixel at corners.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def resize_nearest(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``mask`` scaled to ``height`` x ``width`` by nearest neighbour (a coarse mask onto a photo)."""
    return F.interpolate(mask[None, None].float(), size=(height, width), mode="nearest")[0, 0] > 0.5


def dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels within ``radius`` (Chebyshev distance) of a true pixel."""
    if radius <= 0:
        return mask.clone()
    x = mask.float()[None, None]
    return F.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)[0, 0] > 0.5


def erode(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels whose whole ``radius`` neighbourhood is true; outside the image counts as true, so an
    object cut by the frame is not eaten from its cut edge."""
    return ~dilate(~mask, radius)


def opening(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Erosion then dilation: removes specks and threads thinner than 2 * radius + 1."""
    return dilate(erode(mask, radius), radius)


def closing(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Dilation then erosion: bridges gaps narrower than 2 * radius + 1."""
    return erode(dilate(mask, radius), radius)


def _run_minimum(labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each true pixel gets the smallest label of its horizontal run of true pixels."""
    starts = mask.clone()
    starts[:, 1:] &= ~mask[:, :-1]
    run = torch.cumsum(starts.flatten(), 0) - 1
    flat_mask = mask.flatten()
    run, values = run[flat_mask], labels.flatten()[flat_mask]
    smallest = torch.full((int(run[-1]) + 1 if len(run) else 0,), float("inf")).scatter_reduce(
        0, run, values, reduce="amin", include_self=False
    )
    out = labels.flatten().clone()
    out[flat_mask] = smallest[run]
    return out.view_as(labels)


def label_components(mask: torch.Tensor) -> torch.Tensor:
    """8-connected components: each true pixel gets the smallest flat index in its component, others -1.

    Each pass takes the minimum label along horizontal and vertical runs, then over 3 x 3
    neighbourhoods (the diagonal links), then lets every pixel adopt its label's label (pointer
    jumping); a component converges in about as many passes as its outline has turns, not pixels.
    """
    height, width = mask.shape
    count = height * width
    # float32 holds integers exactly up to 2**24: far above any working resolution used here.
    if count >= 2**24:
        raise ValueError(f"mask of {count} pixels is too large to label")
    index = torch.arange(count, dtype=torch.float32).view(height, width)
    inf = torch.full_like(index, float(count))
    labels = torch.where(mask, index, inf)
    while True:
        merged = _run_minimum(labels, mask)
        merged = _run_minimum(merged.T.contiguous(), mask.T.contiguous()).T
        neighbours = -F.max_pool2d(-merged[None, None], 3, stride=1, padding=1)[0, 0]
        merged = torch.where(mask, torch.minimum(merged, neighbours), inf)
        jumped = torch.where(mask, merged.flatten()[merged.clamp_max(count - 1).long()].view(height, width), inf)
        if torch.equal(jumped, labels):
            break
        labels = jumped
    return torch.where(mask, labels.long(), torch.full_like(labels, -1, dtype=torch.long))


def component_areas(labels: torch.Tensor) -> dict[int, int]:
    """{label: pixel count} of ``label_components``' output."""
    found, counts = torch.unique(labels[labels >= 0], return_counts=True)
    return {int(k): int(v) for k, v in zip(found, counts)}


def keep_large_components(mask: torch.Tensor, *, relative: float, absolute: int) -> tuple[torch.Tensor, int]:
    """Keep the components at least ``relative`` x the largest one and at least ``absolute`` pixels.

    More than one may stay on purpose: a pair of shoes is two components. Returns (mask, kept count)."""
    labels = label_components(mask)
    areas = component_areas(labels)
    if not areas:
        return mask.clone(), 0
    largest = max(areas.values())
    keep = [label for label, area in areas.items() if area >= relative * largest and area >= absolute]
    if not keep:
        return torch.zeros_like(mask), 0
    return torch.isin(labels, torch.tensor(keep)), len(keep)


def fill_holes(mask: torch.Tensor, max_area: int) -> torch.Tensor:
    """Fill the false regions that do not touch the image border and have at most ``max_area`` pixels.

    Large enclosed regions stay: between a sleeve and the body of a shirt laid flat there is real
    backdrop, while small ones are prints, buttons or highlights that happen to match the backdrop."""
    background = label_components(~mask)
    border = torch.cat((background[0], background[-1], background[:, 0], background[:, -1]))
    outside = set(int(v) for v in torch.unique(border) if v >= 0)
    holes = [label for label, area in component_areas(background).items() if label not in outside and area <= max_area]
    if not holes:
        return mask.clone()
    return mask | torch.isin(background, torch.tensor(holes))
