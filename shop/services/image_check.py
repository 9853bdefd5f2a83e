"""Decide whether some bytes are a complete image the shop can store and browsers can show."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image

# Formats every browser displays. Pillow reads many more (TIFF, PSD, ...), but a product photo
# in one of those would be stored and then shown as a broken image on the site.
WEB_FORMATS: dict[str, tuple[str, ...]] = {
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "PNG": (".png",),
    "GIF": (".gif",),
    "WEBP": (".webp",),
}


class BadImage(ValueError):
    """The bytes are not an acceptable image; str(exc) is the reason to show the user."""


@dataclass(frozen=True)
class CheckedImage:
    """What decoding a good image told us."""

    format: str
    width: int
    height: int

    def extension_for(self, filename: str) -> str:
        """The file's own extension if it fits the decoded format, else the format's usual one.

        A PNG saved as "photo.jpg" would otherwise be served with a JPEG content type.
        """
        suffix = PurePath(filename).suffix.lower()
        allowed = WEB_FORMATS[self.format]
        return suffix if suffix in allowed else allowed[0]


def check_image(data: bytes) -> CheckedImage:
    """Fully decode ``data`` and return its format and size, or raise :class:`BadImage`.

    ``Image.open`` only reads the header; ``load()`` decodes every pixel, which is what catches
    truncated and corrupt files. Pillow's decompression-bomb warning is treated as an error too:
    an image that large is never a product photo.
    """
    if not data:
        raise BadImage("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only the decoders of the formats we keep ever see the bytes: Pillow's rarer decoders
            # (the ones a product photo never needs) are where its security bugs have been.
            with Image.open(io.BytesIO(data), formats=list(WEB_FORMATS)) as image:
                image_format = image.format or ""
                image.load()
                width, height = image.size
    except Image.UnidentifiedImageError:
        raise BadImage("not an image in a format the shop keeps (JPEG, PNG, GIF or WebP)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"decompression bomb: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's decoders raise OSError, SyntaxError, ValueError, EOFError...
        raise BadImage(f"corrupt or truncated image: {exc}") from None
    if image_format not in WEB_FORMATS:
        raise BadImage(f"unsupported image format {image_format or 'unknown'} (use JPEG, PNG, GIF or WebP)")
    return CheckedImage(format=image_format, width=width, height=height)
