"""Repair masks: the picture a shop sends (API) or paints (admin brush) to say which pixels to repair.

White marks a pixel to repair, black (or transparent) keeps it. A mask is decoded under the upload rules
(``uploads.decode_photo``), reduced to one bit per pixel, checked against the photo it is for, and stored
as our own PNG, so the job reads back exactly what was checked. It stays stored as the job's input."""
import uuid
from io import BytesIO
from typing import IO

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from PIL import Image

from ..conf import settings
from .files import FileBatch
from .uploads import _read_limited, decode_photo, upright_size

FIELD = "mask"
# Inpainting invents what it fills: beyond half the photo the result is no longer the product's photo.
MAX_SHARE = 0.5
# Masks drawn over a displayed or resized copy of the photo are a pixel or two off its exact shape.
ASPECT_TOLERANCE = 0.02


def _refuse(reason: str) -> ValidationError:
    return ValidationError({FIELD: reason})


def binary(image: Image.Image) -> Image.Image:
    """``image`` as an "L" mask of 0 and 255: bright and opaque pixels are marked."""
    marked = image.convert("L").point(lambda v: 255 if v >= 128 else 0)
    if image.mode == "RGBA":
        opaque = image.getchannel("A").point(lambda v: 255 if v >= 128 else 0)
        marked = Image.composite(marked, Image.new("L", image.size, 0), opaque)
    return marked


def read_mask(upload: UploadedFile | bytes | IO[bytes], photo_size: tuple[int, int] | None) -> Image.Image:
    """The checked binary mask in ``upload``, for a photo of ``photo_size`` (None when unknown), or a
    ``ValidationError({"mask": reason})``."""
    try:
        decoded, _ = decode_photo(_read_limited(upload))
    except ValidationError as exc:
        raise _refuse(f"The mask is not a usable image: {' '.join(exc.messages)}") from exc
    mask = binary(decoded)
    marked = mask.histogram()[255] / (mask.width * mask.height)
    if marked == 0:
        raise _refuse("The mask marks nothing: paint the pixels to repair white on black.")
    if marked > MAX_SHARE:
        raise _refuse(
            f"The mask marks {marked:.0%} of the photo; repair fills small regions (at most {MAX_SHARE:.0%}). "
            "Check that the regions to repair are white and the rest black."
        )
    if photo_size is not None:
        width, height = photo_size
        if abs(mask.width * height / (mask.height * width) - 1) > ASPECT_TOLERANCE:
            raise _refuse(
                f"The mask is {mask.width}×{mask.height} and the photo {width}×{height}: the mask must have the "
                "photo's proportions (it is scaled to the photo's size)."
            )
    return mask


def photo_size_of(storage, name: str) -> tuple[int, int] | None:
    """The upright size of the stored photo ``name``, from its header; None when it cannot be read."""
    try:
        with storage.open(name, "rb") as fh:
            return upright_size(fh.read())
    except OSError:
        return None


def store(batch: FileBatch, storage, product_pk, mask: Image.Image) -> str:
    """Write ``mask`` as a 1-bit PNG through ``batch``; its storage name."""
    buffer = BytesIO()
    mask.convert("1").save(buffer, format="PNG")
    name = "/".join([settings.UPLOAD_TO.strip("/"), "masks", str(product_pk), f"{uuid.uuid4().hex}.png"])
    return batch.save_to(storage, name, ContentFile(buffer.getvalue()))


def is_stored_name(name: object) -> bool:
    prefix = "/".join([settings.UPLOAD_TO.strip("/"), "masks", ""])
    return isinstance(name, str) and name.startswith(prefix) and ".." not in name and name.endswith(".png")


def load(storage, name: str, size: tuple[int, int]) -> Image.Image:
    """The stored mask ``name`` as an "L" mask of ``size``."""
    with storage.open(name, "rb") as fh, Image.open(fh, formats=["PNG"]) as stored:
        mask = stored.convert("L")
    if mask.size != size:
        # Scaled up, a mask's edge pixels are partly marked: repair them too rather than leave a seam.
        mask = mask.resize(size, Image.Resampling.BILINEAR).point(lambda v: 255 if v > 0 else 0)
    return mask
