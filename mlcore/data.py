"""Turn uploaded product photos into fixed-size uint8 tensors.

Photos are fitted whole into the square (padded, never cropped): a cropped
sleeve or shoe tip teaches the generator that products are cut off.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import BinaryIO

import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms.functional import pil_to_tensor

from .photos import has_alpha

ImageSource = str | os.PathLike | bytes | bytearray | BinaryIO

# Transparent areas of cut-out product shots become white, like a studio backdrop.
ALPHA_BACKGROUND = (255, 255, 255)


def _read_bytes(source: ImageSource) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise ValueError(f"cannot read image file {os.fspath(source)!r}: {exc}") from exc
    if hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise ValueError("image file object must be opened in binary mode")
        return bytes(data)
    raise ValueError(f"unsupported image source type {type(source).__name__}")


def _flatten_alpha(img: Image.Image) -> Image.Image:
    if not has_alpha(img):
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    background = Image.new("RGB", rgba.size, ALPHA_BACKGROUND)
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def load_image(source: ImageSource, formats: Sequence[str] | None = None) -> Image.Image:
    """Decode a photo from a path, bytes or binary file object into an RGB image.

    ``formats`` names the Pillow decoders that may see the bytes (None: every one Pillow has). Pass an
    allow-list for photos from outside: Pillow's rarer decoders are where its security bugs have been.
    EXIF orientation is applied (phones store portrait shots rotated) and
    transparency is flattened onto white. Raises ``ValueError`` with the reason
    for empty, truncated, non-image, not allowed or oversized data.
    """
    data = _read_bytes(source)
    if not data:
        raise ValueError("image file is empty (0 bytes)")
    try:
        with Image.open(io.BytesIO(data), formats=list(formats) if formats is not None else None) as opened:
            # Decode fully now, so truncated files fail here rather than later.
            opened.load()
            img = ImageOps.exif_transpose(opened)
            return _flatten_alpha(img)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        allowed = f" ({', '.join(formats)})" if formats is not None else ""
        raise ValueError(f"data is not an image in a format that may be read{allowed}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ValueError(f"image data is corrupt or truncated: {exc}") from exc


def border_median_color(img: Image.Image) -> tuple[int, int, int]:
    """Per-channel median of the outermost pixel ring: the photo's backdrop colour."""
    pixels = pil_to_tensor(img.convert("RGB"))
    ring = torch.cat(
        [pixels[:, 0, :], pixels[:, -1, :], pixels[:, :, 0], pixels[:, :, -1]], dim=1
    )
    return tuple(int(v) for v in ring.median(dim=1).values)


def to_square_tensor(img: Image.Image, size: int) -> torch.Tensor:
    """Fit the whole image into size x size, padding with its backdrop colour -> uint8 3 x S x S."""
    img = img.convert("RGB")
    padded = ImageOps.pad(
        img, (size, size), method=Image.Resampling.LANCZOS, color=border_median_color(img)
    )
    return pil_to_tensor(padded)


def stack_images(images: list[Image.Image], size: int) -> torch.Tensor:
    """Squared and stacked: N x 3 x S x S uint8."""
    if not images:
        raise ValueError("no images to stack")
    return torch.stack([to_square_tensor(img, size) for img in images])
