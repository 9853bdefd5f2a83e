"""Photos people upload: decoded safely and stored as imagegen's own PNG, or refused with the reason.

What an upload goes through (``normalise_upload``), in this order, so that each check costs as little as
it can:

1. **Size in bytes** (``IMAGEGEN_UPLOAD_MAX_BYTES``), from the upload's known size or by reading at most one
   byte more than the limit; the API also drops an oversized file while it streams in
   (``UploadSizeLimitHandler``), so it never fills memory or disk.
2. **Format, from the content**: Pillow may only try the decoders in ``IMAGEGEN_UPLOAD_FORMATS``; SVG,
   HTML, PDF, HEIC, TIFF, BMP ... never reach a parser. The declared file name, its extension and the
   declared content type decide nothing: a PNG named ``photo.jpg`` and sent as ``image/gif`` is a PNG, and
   an HTML page named ``photo.jpg`` is refused. A declared type that is not an image (``text/html``) is
   not refused either: the client chooses it freely, so refusing on it would stop nobody, and what we
   store and serve is our own PNG whatever it said. It is only logged when it disagrees.
3. **Dimensions, from the header**, before any pixel is decoded: at most ``IMAGEGEN_UPLOAD_MAX_PIXELS``
   pixels (a decompression bomb declaring 30000x30000 is refused in microseconds, whatever Pillow's own
   ``Image.MAX_IMAGE_PIXELS`` is set to) and at least ``IMAGEGEN_UPLOAD_MIN_SIDE`` on each side.
4. **One frame**: animated GIF, APNG and WebP are refused rather than silently cut to their first frame,
   which is often not what the uploader saw (a blank or fading frame). A camera's MPO file is a JPEG whose
   extra pictures are a stereo pair or previews, so it counts as its first, primary picture.
5. **Full decode** (``load()``), so a truncated or corrupt file fails here and not later in a worker.
   ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never set (``manage.py check`` warns when something else did).
6. **Normalisation**: the EXIF orientation is applied, then every piece of metadata (EXIF, XMP, ICC
   profile, comments, text chunks, and whatever bytes follow the image) is dropped; CMYK, YCbCr, LAB and
   the like become RGB; 16-bit greys are scaled to 8 bits (65535 -> 255, mid-grey stays mid-grey);
   palette images become RGB, or RGBA when they have transparency; images with alpha stay RGBA.
   Embedded ICC profiles are not applied: that would hand attacker-supplied profiles to another parser
   (LittleCMS), and the colours of wide-gamut photos shift only slightly at training resolution.
7. **Re-encoding** as PNG: only these bytes are stored, under a key made of a UUID
   (``models.source_photo_path``), never of the uploader's file name, which is kept as a cleaned label.

Any refusal is ``django.core.exceptions.ValidationError({"image": "<reason>"})``; the API answers it with
400 and the admin shows it on the form. Nothing is stored before every check has passed, and
``save_source_photo`` stores the file and the row together or neither.
"""
from __future__ import annotations

import logging
import unicodedata
from dataclasses import dataclass
from io import BytesIO
from typing import IO, TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.db.models import Model
from PIL import Image, ImageMath, ImageOps, UnidentifiedImageError

from ..conf import settings
from . import files

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

    from ..models import SourcePhoto

logger = logging.getLogger(__name__)

FIELD = "image"
ORIGINAL_NAME_MAX_LENGTH = 255
_READ_CHUNK = 1024 * 1024

# Friendlier names than Pillow's format ids, for messages.
_FORMAT_NAMES = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WebP", "GIF": "GIF", "TIFF": "TIFF", "BMP": "BMP"}
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")

MESSAGE_NO_FILE = "No file was submitted: send the photo as the file field “image” of a multipart/form-data request."
MESSAGE_SEVERAL_FILES = "Send one photo per request."
MESSAGE_EMPTY = "The file is empty (0 bytes)."


@dataclass(frozen=True)
class NormalisedImage:
    """An upload that passed every check, re-encoded: what gets stored."""

    content: ContentFile  # PNG bytes we encoded ourselves
    width: int
    height: int
    mode: str  # "RGB" or "RGBA"
    source_format: str  # what Pillow decoded it as ("JPEG", "PNG" ...), not what the upload claimed
    original_name: str  # the uploader's file name, cleaned, for display only ("" when none)


def _refuse(reason: str) -> ValidationError:
    return ValidationError({FIELD: reason})


def _human_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f}".rstrip("0").rstrip(".") + " KB"
    return f"{count / 1024 / 1024:.1f}".rstrip("0").rstrip(".") + " MB"


def too_large_message(size: int | None = None) -> str:
    """Why a file over ``IMAGEGEN_UPLOAD_MAX_BYTES`` is refused (``size`` when known)."""
    limit = _human_bytes(settings.UPLOAD_MAX_BYTES)
    if size is None:
        return f"The file is larger than {limit}, the most accepted."
    return f"The file is {_human_bytes(size)}; the most accepted is {limit}."


def accepted_formats() -> list[str]:
    """The Pillow format ids uploads may be decoded as, upper-cased (``IMAGEGEN_UPLOAD_FORMATS``)."""
    return [name.upper() for name in settings.UPLOAD_FORMATS]


def accepted_formats_text() -> str:
    names = list(dict.fromkeys(_FORMAT_NAMES.get(name, name) for name in accepted_formats()))
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def accepted_content_types() -> list[str]:
    """MIME types of the accepted formats, for an ``accept`` attribute (a hint to browsers, never a check)."""
    Image.init()
    return sorted({Image.MIME[name] for name in accepted_formats() if name in Image.MIME})


def clean_original_name(name: str | None) -> str:
    """The uploader's file name as a harmless label: no folders, no control or bidi characters, bounded.

    ``../../etc/passwd.png`` becomes ``passwd.png``; it is shown to staff (escaped) and never used as a key."""
    if not name:
        return ""
    text = unicodedata.normalize("NFC", str(name)).replace("\\", "/").rsplit("/", 1)[-1]
    # Category C: control characters, format characters (U+202E, right-to-left override, displays
    # "a<U+202E>gpj.exe" as "aexe.jpg"), surrogates and unassigned code points.
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))
    return " ".join(text.split())[:ORIGINAL_NAME_MAX_LENGTH]


def _read_limited(upload: UploadedFile | bytes | IO[bytes]) -> bytes:
    """The upload's bytes, refusing (without reading them all) anything over the byte limit."""
    limit = settings.UPLOAD_MAX_BYTES
    if isinstance(upload, (bytes, bytearray, memoryview)):
        if len(upload) > limit:
            raise _refuse(too_large_message(len(upload)))
        return bytes(upload)
    declared = getattr(upload, "size", None)
    if isinstance(declared, int) and declared > limit:
        raise _refuse(too_large_message(declared))
    # Something (another validator, a previous attempt) may have read part of it already.
    if getattr(upload, "seekable", lambda: False)():
        upload.seek(0)
    data = bytearray()
    # One byte past the limit is enough to know it is too large; a stream may lie about its size.
    while len(data) <= limit:
        chunk = upload.read(min(_READ_CHUNK, limit + 1 - len(data)))
        if not chunk:
            break
        data += chunk
    if len(data) > limit:
        raise _refuse(too_large_message())
    return bytes(data)


def _sniff(data: bytes) -> str | None:
    """What the first bytes look like (a hint for the message only: Pillow, limited to the accepted
    formats, decides). None when unknown."""
    head = data[:1024]
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"avis"):
            return "AVIF"
        if brand in (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
    if head.startswith(b"%PDF"):
        return "PDF"
    if head.startswith(b"8BPS"):
        return "PSD"
    if head.startswith(b"BM"):
        return "BMP"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if b"<svg" in text:
        return "SVG"
    if text.startswith((b"<!doctype html", b"<html", b"<script", b"<head", b"<body", b"<iframe")):
        return "HTML"
    if text.startswith(b"<"):
        return "XML"
    return None


def _not_decodable(data: bytes) -> ValidationError:
    accepted = accepted_formats_text()
    looks_like = _sniff(data)
    if looks_like in accepted_formats():
        name = _FORMAT_NAMES.get(looks_like, looks_like)
        return _refuse(f"The file starts like a {name} image but its data is corrupt: it could not be decoded.")
    if looks_like == "SVG":
        return _refuse(f"SVG images are not accepted (they are documents that can carry scripts). Upload a {accepted} image.")
    if looks_like in ("HTML", "XML"):
        return _refuse(f"The file is {looks_like}, not an image. Upload a {accepted} image.")
    if looks_like is not None:
        return _refuse(f"{looks_like} files are not accepted. Upload a {accepted} image.")
    return _refuse(f"The file is not an image in an accepted format. Upload a {accepted} image.")


def _pixel_count(count: int) -> str:
    if count < 100_000:
        return f"{count:,} pixels"
    return f"{count / 1e6:.2f}".rstrip("0").rstrip(".") + " megapixels"


def _check_dimensions(width: int, height: int) -> None:
    max_pixels, min_side = settings.UPLOAD_MAX_PIXELS, settings.UPLOAD_MIN_SIDE
    if width * height > max_pixels:
        raise _refuse(
            f"The image is {width}×{height} = {_pixel_count(width * height)}; "
            f"the most accepted is {_pixel_count(max_pixels)}."
        )
    if min(width, height) < min_side:
        raise _refuse(f"The image is {width}×{height} pixels; each side must be at least {min_side} pixels.")


def _check_single_frame(image: Image.Image) -> None:
    if image.format != "MPO" and getattr(image, "is_animated", False):
        name = _FORMAT_NAMES.get(image.format, image.format)
        raise _refuse(f"Animated images are not accepted: this {name} has more than one frame. Upload a still photo.")


def _apply_orientation(image: Image.Image) -> Image.Image:
    """The picture turned upright per its EXIF orientation (phones store portraits sideways)."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception as exc:  # noqa: BLE001 - malformed EXIF: the pixels are fine, the tag is dropped anyway
        logger.info("Ignoring unreadable EXIF orientation of an upload: %r", exc)
        return image


def _sixteen_to_eight(image: Image.Image) -> Image.Image:
    """16-bit grey (0..65535) to 8-bit "L", scaled and rounded (32896 -> 128), keeping a transparent key.

    Pillow's own conversion clips instead of scaling, which turns almost every 16-bit grey white."""
    wide = image.convert("I")
    grey = wide.point(lambda value: value / 257 + 0.5).convert("L")
    key = image.info.get("transparency")
    if isinstance(key, int):
        # Matched on the 16-bit values: after scaling, 257 neighbouring greys share each 8-bit one.
        alpha = ImageMath.lambda_eval(lambda args: (args["v"] != key) * 255, v=wide).convert("L")
        grey = grey.convert("LA")
        grey.putalpha(alpha)
    return grey


def _storable(image: Image.Image) -> Image.Image:
    """``image`` as a new RGB or RGBA picture without metadata."""
    if image.mode in _SIXTEEN_BIT_MODES:
        image = _sixteen_to_eight(image)
    elif image.mode == "La":  # premultiplied; Pillow converts it to RGBA only by way of LA
        image = image.convert("LA")
    elif image.mode == "F":  # floating-point grey, taken as 0..255
        image = image.convert("L")
    keeps_alpha = image.mode in _ALPHA_MODES or "transparency" in image.info
    result = image.convert("RGBA" if keeps_alpha else "RGB")
    # The PNG encoder writes what info holds (ICC profile, transparency ...); ours holds nothing.
    result.info.clear()
    return result


def _encode_png(image: Image.Image) -> ContentFile:
    buffer = BytesIO()
    # zlib's default level: files.png_file's optimize=True costs seconds on a 40-megapixel photo.
    image.save(buffer, format="PNG", compress_level=6)
    return ContentFile(buffer.getvalue(), name="photo.png")


def normalise_upload(
    upload: UploadedFile | bytes | IO[bytes], *, name: str | None = None, content_type: str | None = None
) -> NormalisedImage:
    """Check and re-encode an uploaded photo (see the module's docstring for every rule).

    ``upload`` is a Django ``UploadedFile`` (its ``name`` and ``content_type`` are used when the arguments
    are not given), bytes, or a binary file object. ``name`` is kept only as a cleaned label and
    ``content_type`` only for the log: neither decides anything. Raises
    ``ValidationError({"image": reason})`` for anything that is not stored."""
    if isinstance(upload, UploadedFile):
        name = upload.name if name is None else name
        content_type = upload.content_type if content_type is None else content_type
    result, source_format = decode_photo(_read_limited(upload), content_type=content_type)
    content = _encode_png(result)
    if content_type and content_type.split(";")[0].strip().lower() != (Image.MIME.get(source_format) or "").lower():
        logger.info("Upload declared as %r decoded as %s", content_type, source_format)
    return NormalisedImage(
        content=content,
        width=result.width,
        height=result.height,
        mode=result.mode,
        source_format=source_format,
        original_name=clean_original_name(name),
    )


def decode_photo(data: bytes, *, content_type: str | None = None) -> tuple[Image.Image, str]:
    """``data`` decoded under every rule of this module: an upright RGB or RGBA picture without metadata,
    and the format it was in. Raises ``ValidationError({"image": reason})``.

    Uploads go through it, and so do the shop's own photos before an operation edits them: those never
    passed our checks (an import, the host's own admin) and may be CMYK, 16-bit, rotated or hostile."""
    if not data:
        raise _refuse(MESSAGE_EMPTY)
    try:
        with Image.open(BytesIO(data), formats=accepted_formats()) as opened:
            source_format = opened.format
            _check_dimensions(*opened.size)
            _check_single_frame(opened)
            opened.load()
            upright = _apply_orientation(opened)
        return _storable(upright), source_format
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Raised by Image.open itself when the header declares more than twice Pillow's global limit (or
        # more than the limit, where warnings are errors); our own limit is checked right after opening.
        logger.info("Refused a decompression bomb: %s", exc)
        raise _refuse(
            f"The image declares too many pixels to decode safely; the most accepted is "
            f"{_pixel_count(settings.UPLOAD_MAX_PIXELS)}."
        ) from exc
    except UnidentifiedImageError as exc:
        raise _not_decodable(data) from exc
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoders raise anything (OSError, SyntaxError, struct.error ...) on hostile input
        logger.info("Refused an undecodable upload (declared %r): %r", content_type, exc)
        if "truncated" in str(exc).lower():
            raise _refuse("The image is truncated: the file ends before the picture does. Upload it again.") from exc
        raise _refuse("The image data is corrupt: it could not be decoded.") from exc


def upright_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) of the picture ``data`` once turned upright, read from its header alone; None when the
    header cannot be read (decoding it fully will then say why)."""
    try:
        with Image.open(BytesIO(data), formats=accepted_formats()) as opened:
            width, height = opened.size
            # EXIF orientations 5 to 8 turn the picture a quarter: the stored width is the upright height.
            if opened.getexif().get(0x0112) in (5, 6, 7, 8):
                width, height = height, width
            return width, height
    except Exception:  # noqa: BLE001 - any unreadable header: the caller decodes later and reports that
        return None


def save_source_photo(
    photo: SourcePhoto, image: NormalisedImage, *, user: AbstractBaseUser | None = None
) -> SourcePhoto:
    """Store ``image`` as the (unsaved) ``photo``'s file and save the row, both or neither.

    ``photo`` needs its product set. If the row cannot be saved the file is deleted again, and if the file
    cannot be written no row is saved. Within an outer transaction that later rolls back the file stays:
    call it outside one, or remove ``photo.image`` yourself on that rollback (the admin does)."""
    photo.width, photo.height = image.width, image.height
    photo.source_format = image.source_format
    photo.original_name = image.original_name
    if user is not None and user.is_authenticated:
        photo.uploaded_by = user
    with files.atomic_files() as batch:
        batch.save(photo.image, "photo.png", image.content)
        photo.save()
    return photo


def add_source_photo(
    product: Model,
    upload: UploadedFile | bytes | IO[bytes],
    *,
    name: str | None = None,
    content_type: str | None = None,
    user: AbstractBaseUser | None = None,
) -> SourcePhoto:
    """Check, normalise and store an uploaded photo of ``product``; the new ``SourcePhoto``.

    Raises ``ValidationError({"image": reason})`` and stores nothing when the upload is refused. The
    decoding happens before any transaction is opened."""
    from ..models import SourcePhoto

    image = normalise_upload(upload, name=name, content_type=content_type)
    return save_source_photo(SourcePhoto(product=product), image, user=user)


class UploadSizeLimitHandler(FileUploadHandler):
    """Put first in ``request.upload_handlers``: a file part past ``IMAGEGEN_UPLOAD_MAX_BYTES`` is dropped
    while it streams in (the rest of it is read and discarded), so an oversized upload takes neither
    memory nor disk. The view then finds the field in ``too_large_fields`` and answers with the reason.
    Django's own DATA_UPLOAD_MAX_MEMORY_SIZE does not count files, so without this nothing bounds them."""

    def __init__(self, request=None, max_bytes: int | None = None) -> None:
        super().__init__(request)
        self.max_bytes = settings.UPLOAD_MAX_BYTES if max_bytes is None else max_bytes
        self.too_large_fields: set[str] = set()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > self.max_bytes:
            self.too_large_fields.add(self.field_name)
            raise SkipFile
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handlers (memory, temporary file) build the file
