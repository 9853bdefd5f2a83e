"""Configuration of the segmentation network ("background" checkpoints), carried as a plain dict inside
every checkpoint so a checkpoint rebuilds its own network."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..plain_config import PlainConfig

KIND = "background"


@dataclass
class SegmenterConfig(PlainConfig):
    """Shape of the segmentation network.

    ``image_size``: side of the square every photo is squeezed to before the network sees it (the
    mask is scaled back to the photo afterwards). ``widths``: channels of the stem's level and of each
    further level at half the resolution of the one before; the deepest level sees the photo at
    ``image_size / 2**len(widths)`` pixels, so that must stay whole.
    """

    image_size: int = 128
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 96])
    kind: str = KIND

    def __post_init__(self) -> None:
        self.widths = list(self.widths)
        if not self.widths or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 4 for w in self.widths):
            raise ValueError(f"widths must be a non-empty list of ints >= 4, got {self.widths!r}")
        size = self.image_size
        stride = 2 ** len(self.widths)
        if isinstance(size, bool) or not isinstance(size, int) or size < stride or size % stride:
            raise ValueError(f"image_size must be a positive multiple of {stride} (2 ** len(widths)), got {size!r}")
        if self.kind != KIND:
            raise ValueError(f"kind must be {KIND!r}, got {self.kind!r}")

    @property
    def stride(self) -> int:
        """How many input pixels one pixel of the deepest level covers, along each side."""
        return 2 ** len(self.widths)
