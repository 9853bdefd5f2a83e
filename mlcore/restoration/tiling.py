"""Run a fully convolutional network over an image of any size in overlapping tiles.

Each output tile is computed from an input window that reaches ``overlap`` pixels beyond it on every side
(less where the image ends), and only the tile itself is kept. When ``overlap`` is at least the network's
receptive radius, a kept pixel never sees the window's cut edge, so the stitched result equals the untiled
one: no seams to blend away. Tile origins and windows are multiples of ``align`` so a network that
downsamples sees every window on the same pixel grid as the whole image.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def pad_to_multiple(image: torch.Tensor, align: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(N x C x H' x W' padded on the bottom/right by mirroring to multiples of ``align``, (H, W))."""
    h, w = image.shape[-2:]
    pad_h, pad_w = (-h) % align, (-w) % align
    if pad_h or pad_w:
        # Mirroring needs the pad to be smaller than the side; tiny images repeat their edge instead.
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    return image, (h, w)


def tile_spans(length: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """(window start, window end, tile start, tile end) along one axis of ``length`` pixels."""
    spans = []
    for start in range(0, length, tile):
        end = min(start + tile, length)
        spans.append((max(start - overlap, 0), min(end + overlap, length), start, end))
    return spans


@torch.inference_mode()
def apply_tiled(
    network: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    align: int,
) -> torch.Tensor:
    """``network`` over ``image`` (N x C x H x W, sides multiples of ``align``) in tiles of ``tile`` pixels.

    The network must keep the size. ``tile`` and ``overlap`` must be multiples of ``align``. The output stays
    on the network's device.
    """
    for name, value in (("tile", tile), ("overlap", overlap)):
        if value < 0 or value % align or (name == "tile" and value == 0):
            raise ValueError(f"{name} must be a {'positive' if name == 'tile' else 'non-negative'} multiple of {align}, got {value}")
    h, w = image.shape[-2:]
    if h % align or w % align:
        raise ValueError(f"image sides must be multiples of {align}, got {h} x {w}")
    rows, cols = tile_spans(h, tile, overlap), tile_spans(w, tile, overlap)
    if len(rows) == 1 and len(cols) == 1:
        return network(image)
    out = None
    for y0, y1, ty0, ty1 in rows:
        for x0, x1, tx0, tx1 in cols:
            result = network(image[..., y0:y1, x0:x1])
            if out is None:
                out = result.new_empty((*result.shape[:-2], h, w))
            out[..., ty0:ty1, tx0:tx1] = result[..., ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0]
    return out
