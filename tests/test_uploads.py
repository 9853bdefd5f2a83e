"""Uploading source photos: every bad input we could think of, over real HTTP, plus the service, the admin
form and the permissions.

Every input is made here with Pillow (or a few lines of ``struct``/``zlib`` where Pillow will not write
it); nothing binary is checked in. ``CASES`` is the table of inputs and their expected outcome: each row
is POSTed as multipart to ``/api/products/<id>/photos/`` on the live server with basic auth of a staff
user holding ``imagegen.add_sourcephoto``. A 400 must say why under ``image`` and leave no row and no
file in MEDIA_ROOT; a 201 must leave exactly one row and one file, a UUID-named PNG that we encoded
(8-bit RGB or RGBA, only IHDR/IDAT/IEND chunks) with the pixels the row's check expects, served as
``image/png``.
"""
from __future__ import annotations

import io
import random
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from PIL import ExifTags, Image, ImageCms, ImageFile
from PIL.PngImagePlugin import PngInfo

from imagegen.models import SourcePhoto
from imagegen.services import uploads

PASSWORD = "uploader-pass-123"
RED, GREEN, BLUE = (255, 0, 0), (0, 128, 0), (0, 0, 255)
PAYLOAD = b"<script>alert('imagegen-polyglot')</script>"
MB = 1024 * 1024


# --- making the inputs -----------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(size: tuple[int, int] = (128, 96)) -> Image.Image:
    """A smooth, photo-like RGB picture (gradients), the same every time."""
    red = Image.linear_gradient("L").resize(size)
    green = Image.linear_gradient("L").rotate(90).resize(size)
    blue = Image.radial_gradient("L").resize(size)
    return Image.merge("RGB", (red, green, blue))


def halves(size: tuple[int, int], left, right, mode: str = "RGB") -> Image.Image:
    width, height = size
    image = Image.new(mode, size, left)
    # An image, not a colour: Pillow 13 pastes an integer colour into "I;16" byte-swapped.
    image.paste(Image.new(mode, (width - width // 2, height), right), (width // 2, 0))
    return image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, *, bit_depth: int, colour_type: int, idat: bytes) -> bytes:
    """A PNG written by hand, for what Pillow will not write (a bomb, 16-bit RGB)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def png_chunk_types(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    types, offset = [], 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        types.append(data[offset + 4:offset + 8])
        offset += 12 + length
    return types


@cache
def bomb_png() -> bytes:
    """A valid 1-bit PNG of 30000x30000 zero pixels: 107 KB that decode to 900 megapixels (900 MB in
    Pillow's "1" mode). Compressed row by row, so making it costs no memory either."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + 30000 // 8)
    idat = b"".join(compressor.compress(row) for _ in range(30000)) + compressor.flush()
    return png_bytes(30000, 30000, bit_depth=1, colour_type=0, idat=idat)


def png_declaring(width: int, height: int) -> bytes:
    """A PNG header declaring ``width`` x ``height`` RGB with almost no pixel data: decoding it would fail
    as truncated, so a pixel-limit message proves the limit was checked before decoding."""
    return png_bytes(width, height, bit_depth=8, colour_type=2, idat=zlib.compress(b"\x00" * 100))


def jpeg_declaring(width: int, height: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is patched to declare ``width`` x ``height``."""
    data = bytearray(encode(photo((64, 64)), "JPEG"))
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def truncated(data: bytes, keep: float) -> bytes:
    return data[: int(len(data) * keep)]


def corrupt_png() -> bytes:
    data = bytearray(encode(photo((256, 256)), "PNG"))
    start = data.index(b"IDAT") + 20
    noise = random.Random(0)
    for i in range(start, start + 200):
        data[i] = noise.randrange(256)
    return bytes(data)


def corrupt_jpeg() -> bytes:
    data = bytearray(encode(photo((256, 256)), "JPEG", quality=90))
    noise = random.Random(0)
    for i in range(600, 2000):
        data[i] = noise.randrange(256)
    return bytes(data)


def polyglot_jpeg() -> bytes:
    """A real JPEG carrying script in its comment and EXIF, with an HTML page appended after its end."""
    exif = Image.Exif()
    exif[ExifTags.Base.ImageDescription] = PAYLOAD.decode()
    jpeg = encode(photo(), "JPEG", quality=90, comment=PAYLOAD, exif=exif)
    return jpeg + b"<!DOCTYPE html><html><body>" + PAYLOAD + b"</body></html>"


def png_with_script_chunks() -> bytes:
    info = PngInfo()
    info.add_text("Comment", PAYLOAD.decode())
    info.add_itxt("Description", PAYLOAD.decode(), zip=True)
    return encode(photo(), "PNG", pnginfo=info)


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b"<script>alert(document.cookie)</script><rect width='64' height='64' fill='red'/></svg>"
)
HTML = b"<!DOCTYPE html>\n<html><body><img src=x onerror=alert(1)>" + PAYLOAD + b"</body></html>"


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (64, 64), colour) for colour in (RED, BLUE, GREEN)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def still_gif_with_transparency() -> bytes:
    image = halves((64, 64), 0, 1, mode="P")
    image.putpalette([*RED, *BLUE] + [0] * 762)
    return encode(image, "GIF", transparency=0)


def mpo() -> bytes:
    """A camera's multi-picture JPEG: the primary picture (red) and a second view (blue)."""
    return encode(Image.new("RGB", (64, 64), RED), "MPO", save_all=True, append_images=[Image.new("RGB", (64, 64), BLUE)])


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (64, 64), (0, 255, 255, 0)), "JPEG", quality=95)  # no cyan, i.e. red


def png16_grey() -> bytes:
    image = Image.new("I;16", (96, 64), 0)
    image.paste(Image.new("I;16", (32, 64), 32896), (32, 0))  # 128 * 257: mid-grey
    image.paste(Image.new("I;16", (32, 64), 65535), (64, 0))
    return encode(image, "PNG")


def png16_grey_transparent_key() -> bytes:
    image = halves((64, 64), 5000, 5001, mode="I;16")  # the same 8-bit grey (19), only one of them transparent
    return encode(image, "PNG", transparency=5000)


def png16_rgb() -> bytes:
    pixel = struct.pack(">HHH", 0x8080, 0x0000, 0xFFFF)
    rows = b"".join(b"\x00" + pixel * 48 for _ in range(48))
    return png_bytes(48, 48, bit_depth=16, colour_type=2, idat=zlib.compress(rows))


def palette_png_with_transparency() -> bytes:
    image = halves((64, 64), 0, 2, mode="P")
    image.putpalette([*RED, *GREEN, *BLUE])
    return encode(image, "PNG", transparency=0)


def rgba_png() -> bytes:
    return encode(halves((64, 64), (10, 20, 30, 128), (200, 100, 50, 255), mode="RGBA"), "PNG")


def grey_alpha_png() -> bytes:
    return encode(halves((64, 64), (90, 0), (200, 255), mode="LA"), "PNG")


def exif_rotated_jpeg() -> bytes:
    """Stored 64 wide and 32 high, left half red, right half blue, with EXIF orientation 6 ("rotate 90°
    clockwise to show"): upright it is 32 wide and 64 high, red on top. It carries an ICC profile too."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.ImageDescription] = "secret-location-52.52N-13.40E"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(halves((64, 32), RED, BLUE), "JPEG", quality=95, exif=exif, icc_profile=icc)


def heic_header() -> bytes:
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(400)


def over_default_byte_limit() -> bytes:
    jpeg = encode(photo(), "JPEG")
    return jpeg + bytes(20 * MB + 1 - len(jpeg))


def small_png() -> bytes:
    return encode(photo((64, 64)), "PNG")


# --- what accepted uploads must look like ------------------------------------------------------------


def close_to(actual, expected, tolerance: int = 8) -> bool:
    return len(actual) == len(expected) and all(abs(a - e) <= tolerance for a, e in zip(actual, expected))


def payload_gone(image: Image.Image, raw: bytes, body: dict) -> None:
    assert b"<script" not in raw.lower() and b"imagegen-polyglot" not in raw
    assert image.mode == "RGB" and image.size == (128, 96)


def decoded_as(fmt: str, size: tuple[int, int] | None = None):
    def check(image: Image.Image, raw: bytes, body: dict) -> None:
        assert body["source_format"] == fmt
        if size:
            assert image.size == size
    return check


def pixels(mode: str, expected: dict[tuple[int, int], tuple], tolerance: int = 0, fmt: str | None = None):
    def check(image: Image.Image, raw: bytes, body: dict) -> None:
        assert image.mode == mode
        for xy, value in expected.items():
            assert close_to(image.getpixel(xy), value, tolerance), (xy, image.getpixel(xy), value)
        if fmt:
            assert body["source_format"] == fmt
    return check


def upright_without_exif(image: Image.Image, raw: bytes, body: dict) -> None:
    assert image.size == (32, 64), "the EXIF rotation is applied to the pixels"
    assert close_to(image.getpixel((16, 12)), RED) and close_to(image.getpixel((16, 52)), BLUE)
    assert len(image.getexif()) == 0 and b"secret-location" not in raw and b"Exif" not in raw


def key_from_uuid_only(image: Image.Image, raw: bytes, body: dict) -> None:
    assert body["original_name"] == "passwd.png"
    assert "passwd" not in body["image"] and "etc" not in body["image"].split("/media/", 1)[1]


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[], bytes]
    status: int
    # A 400's reason must contain this; for a 201, what the check verifies (for the table).
    expect: str
    name: str = "photo.jpg"
    content_type: str = "image/jpeg"
    check: Callable[[Image.Image, bytes, dict], None] | None = None
    # IMAGEGEN_* settings for this case; a callable gets the upload's bytes.
    overrides: dict | Callable[[bytes], dict] = field(default_factory=dict)
    # Pillow's own global limit for this case ("default" leaves it alone).
    pillow_max_pixels: int | None | str = "default"


CASES = [
    # Decompression bombs and huge dimensions: refused from the header, nothing decoded.
    Case("bomb-png-30000x30000", bomb_png, 400,
         "The image declares too many pixels to decode safely; the most accepted is 40 megapixels.", name="bomb.png"),
    Case("bomb-png-30000x30000-pillow-limit-off", bomb_png, 400,
         "30000×30000 = 900 megapixels; the most accepted is 40 megapixels", name="bomb.png",
         pillow_max_pixels=None),
    Case("png-header-just-over-40-megapixels", lambda: png_declaring(6400, 6251), 400,
         "6400×6251 = 40.01 megapixels; the most accepted is 40 megapixels", name="big.png"),
    Case("jpeg-header-just-over-40-megapixels", lambda: jpeg_declaring(6400, 6251), 400,
         "6400×6251 = 40.01 megapixels; the most accepted is 40 megapixels"),
    Case("huge-dimensions-jpeg-65500x65500", lambda: jpeg_declaring(65500, 65500), 400,
         "declares too many pixels to decode safely"),
    Case("huge-dimensions-jpeg-pillow-limit-off", lambda: jpeg_declaring(65500, 65500), 400,
         "65500×65500 = 4290.25 megapixels; the most accepted is 40 megapixels", pillow_max_pixels=None),
    Case("real-png-one-column-over-pixel-limit", lambda: encode(photo((65, 64)), "PNG"), 400,
         "65×64 = 4,160 pixels; the most accepted is 4,096 pixels", name="p.png", overrides={"IMAGEGEN_UPLOAD_MAX_PIXELS": 64 * 64}),
    Case("real-png-exactly-at-pixel-limit", small_png, 201, "accepted (64×64 = the limit)", name="p.png",
         overrides={"IMAGEGEN_UPLOAD_MAX_PIXELS": 64 * 64}, check=decoded_as("PNG", (64, 64))),
    # Broken files.
    Case("truncated-jpeg", lambda: truncated(encode(photo((256, 256)), "JPEG", quality=95), 0.6), 400, "truncated"),
    Case("truncated-png", lambda: truncated(encode(photo((256, 256)), "PNG"), 0.5), 400, "truncated", name="t.png"),
    Case("corrupt-png-pixel-data", corrupt_png, 400, "The image data is corrupt", name="c.png"),
    Case("corrupt-jpeg-headers", corrupt_jpeg, 400, "starts like a JPEG image but its data is corrupt"),
    Case("png-signature-then-garbage", lambda: b"\x89PNG\r\n\x1a\n" + random.Random(2).randbytes(600), 400,
         "starts like a PNG image but its data is corrupt", name="g.png"),
    Case("random-bytes", lambda: random.Random(1).randbytes(4096), 400, "not an image in an accepted format"),
    Case("zero-bytes", lambda: b"", 400, "The file is empty (0 bytes)."),
    # Script inside or around an image: accepted, but only our re-encoding is stored.
    Case("polyglot-jpeg-html-appended-script-in-comment-and-exif", polyglot_jpeg, 201,
         "accepted; stored PNG has no <script>", check=payload_gone),
    Case("png-script-in-text-chunks", png_with_script_chunks, 201, "accepted; stored PNG has no <script>",
         name="t.png", content_type="image/png", check=payload_gone),
    Case("html-named-jpg", lambda: HTML, 400, "The file is HTML, not an image."),
    Case("svg-with-script-named-png", lambda: SVG, 400, "SVG images are not accepted", name="logo.png",
         content_type="image/png"),
    Case("svg-with-script-as-svg", lambda: SVG, 400, "SVG images are not accepted", name="logo.svg",
         content_type="image/svg+xml"),
    # Names and declared types decide nothing.
    Case("png-named-jpg-sent-as-gif", small_png, 201, "accepted as PNG (content decides)", name="photo.jpg",
         content_type="image/gif", check=decoded_as("PNG", (64, 64))),
    Case("png-declared-text-html", small_png, 201, "accepted as PNG (declared type ignored)", name="photo.html",
         content_type="text/html", check=decoded_as("PNG", (64, 64))),
    Case("path-traversal-name", small_png, 201, "accepted; key is <uuid>.png, label 'passwd.png'",
         name="../../etc/passwd.png", content_type="image/png", check=key_from_uuid_only),
    # Formats outside the allow-list.
    Case("bmp", lambda: encode(photo(), "BMP"), 400, "BMP files are not accepted. Upload a JPEG, PNG, WebP or GIF image.",
         name="p.bmp", content_type="image/bmp"),
    Case("tiff", lambda: encode(photo(), "TIFF"), 400, "TIFF files are not accepted", name="p.tif"),
    Case("heic", heic_header, 400, "HEIC files are not accepted", name="IMG_0001.HEIC", content_type="image/heic"),
    Case("pdf-named-jpg", lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", 400, "PDF files are not accepted"),
    # Animation.
    Case("animated-gif", lambda: animated("GIF"), 400, "Animated images are not accepted: this GIF has more than one frame",
         name="a.gif", content_type="image/gif"),
    Case("animated-png-apng", lambda: animated("PNG"), 400, "Animated images are not accepted: this PNG", name="a.png"),
    Case("animated-webp", lambda: animated("WEBP"), 400, "Animated images are not accepted: this WebP", name="a.webp"),
    Case("still-gif-with-transparency", still_gif_with_transparency, 201, "accepted as RGBA, transparency kept",
         name="s.gif", content_type="image/gif",
         check=pixels("RGBA", {(10, 10): (*RED, 0), (50, 10): (*BLUE, 255)}, fmt="GIF")),
    Case("mpo-camera-jpeg", mpo, 201, "accepted as its primary picture", name="DSCF0001.MPO",
         check=pixels("RGB", {(32, 32): RED}, tolerance=8, fmt="MPO")),
    # Colour modes and bit depths.
    Case("cmyk-jpeg", cmyk_jpeg, 201, "accepted as RGB, red stays red", check=pixels("RGB", {(32, 32): RED}, tolerance=8)),
    Case("png-16-bit-grey", png16_grey, 201, "accepted as 8-bit RGB: 0, mid-grey 128, 255", name="g16.png",
         check=pixels("RGB", {(10, 10): (0, 0, 0), (48, 10): (128, 128, 128), (80, 10): (255, 255, 255)})),
    Case("png-16-bit-grey-transparent-key", png16_grey_transparent_key, 201,
         "accepted as RGBA, only the 16-bit key transparent", name="g16t.png",
         check=pixels("RGBA", {(10, 10): (19, 19, 19, 0), (50, 10): (19, 19, 19, 255)})),
    Case("png-16-bit-rgb", png16_rgb, 201, "accepted as 8-bit RGB (128, 0, 255)", name="rgb16.png",
         check=pixels("RGB", {(20, 20): (128, 0, 255)})),
    Case("palette-png-with-transparency", palette_png_with_transparency, 201, "accepted as RGBA, transparency kept",
         name="p.png", check=pixels("RGBA", {(10, 10): (*RED, 0), (50, 10): (*BLUE, 255)})),
    Case("rgba-png", rgba_png, 201, "accepted as RGBA, pixels exact", name="a.png",
         check=pixels("RGBA", {(10, 10): (10, 20, 30, 128), (50, 10): (200, 100, 50, 255)})),
    Case("grey-alpha-png", grey_alpha_png, 201, "accepted as RGBA", name="la.png",
         check=pixels("RGBA", {(10, 10): (90, 90, 90, 0), (50, 10): (200, 200, 200, 255)})),
    Case("webp-lossless", lambda: encode(halves((64, 64), RED, BLUE), "WEBP", lossless=True), 201, "accepted, pixels exact",
         name="w.webp", content_type="image/webp",
         check=pixels("RGB", {(10, 10): RED, (50, 10): BLUE}, fmt="WEBP")),
    Case("exif-orientation-6", exif_rotated_jpeg, 201, "accepted upright (32×64), EXIF gone", check=upright_without_exif),
    # Size.
    Case("too-small-16x16", lambda: encode(photo((16, 16)), "PNG"), 400,
         "The image is 16×16 pixels; each side must be at least 32 pixels.", name="s.png"),
    Case("one-side-too-small-1000x16", lambda: encode(photo((1000, 16)), "PNG"), 400,
         "The image is 1000×16 pixels; each side must be at least 32 pixels.", name="s.png"),
    Case("over-20-mb", over_default_byte_limit, 400, "The file is larger than 20 MB, the most accepted."),
    Case("byte-limit-exactly", small_png, 201, "accepted (size = the limit)", name="p.png",
         overrides=lambda data: {"IMAGEGEN_UPLOAD_MAX_BYTES": len(data)}, check=decoded_as("PNG")),
    Case("byte-limit-plus-one", small_png, 400, "The file is larger than", name="p.png",
         overrides=lambda data: {"IMAGEGEN_UPLOAD_MAX_BYTES": len(data) - 1}),
]


# --- the HTTP side -----------------------------------------------------------------------------------


def files_under(root: str | Path) -> list[str]:
    root = Path(root)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def make_staff(django_user_model, username: str, codenames: list[str], *, is_staff: bool = True):
    user = django_user_model.objects.create_user(username, password=PASSWORD, is_staff=is_staff)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="imagegen", codename__in=codenames))
    return user


@pytest.fixture
def fast_passwords(settings):
    # Basic auth checks the password on every request; the default hasher's 1M rounds would dominate.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def uploader(transactional_db, django_user_model, fast_passwords):
    return make_staff(django_user_model, "uploader", ["add_sourcephoto", "view_sourcephoto"])


@pytest.fixture
def product(make_products):
    (product,) = make_products({"hat": 1}, with_photos=False)
    return product


@dataclass
class Api:
    base: str
    product_id: int
    auth: tuple[str, str] | None

    @property
    def url(self) -> str:
        return f"{self.base}/api/products/{self.product_id}/photos/"

    def upload(self, data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg", **kwargs) -> requests.Response:
        files = kwargs.pop("files", None) or {"image": (name, data, content_type)}
        return requests.post(kwargs.pop("url", self.url), files=files, auth=self.auth, timeout=120, **kwargs)


@pytest.fixture
def api(live_server, uploader, product, settings):
    settings.SERVE_MEDIA = True
    return Api(live_server.url, product.pk, (uploader.username, PASSWORD))


def assert_refused(reply: requests.Response, reason: str, media_root: str) -> None:
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert list(body) == ["image"] and len(body["image"]) == 1, body
    assert reason in body["image"][0], body
    assert not SourcePhoto.objects.exists(), "a refused upload leaves no row"
    assert files_under(media_root) == [], "a refused upload leaves no file"


def assert_stored(reply: requests.Response, product_id: int, media_root: str) -> tuple[Image.Image, bytes, dict]:
    """The 201's photo, checked against its row, its file and what the server serves; returns the PNG."""
    assert reply.status_code == 201, reply.text
    body = reply.json()
    photo_row = SourcePhoto.objects.get()
    assert body["id"] == photo_row.pk and body["product"] == product_id
    assert re.fullmatch(rf"imagegen/photos/{product_id}/[0-9a-f]{{32}}\.png", photo_row.image.name), photo_row.image.name
    assert files_under(media_root) == [photo_row.image.name], "exactly one file: ours, never the upload itself"
    raw = (Path(media_root) / photo_row.image.name).read_bytes()
    assert set(png_chunk_types(raw)) == {b"IHDR", b"IDAT", b"IEND"}, "no metadata chunk of any kind"
    served = requests.get(body["image"], timeout=30)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/png" and served.content == raw
    with Image.open(io.BytesIO(raw)) as stored:
        stored.load()
        assert stored.format == "PNG" and stored.mode in ("RGB", "RGBA")
        assert (stored.width, stored.height) == (body["width"], body["height"]) == (photo_row.width, photo_row.height)
        return stored.copy(), raw, body


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_upload_case(api, settings, monkeypatch, case: Case):
    data = case.build()
    overrides = case.overrides(data) if callable(case.overrides) else case.overrides
    for name, value in overrides.items():
        setattr(settings, name, value)
    if case.pillow_max_pixels != "default":
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", case.pillow_max_pixels)
    reply = api.upload(data, case.name, case.content_type)
    if case.status == 400:
        assert_refused(reply, case.expect, settings.MEDIA_ROOT)
    else:
        stored, raw, body = assert_stored(reply, api.product_id, settings.MEDIA_ROOT)
        assert body["source_format"] in uploads.accepted_formats() + ["MPO"]
        if case.check:
            case.check(stored, raw, body)


def test_request_without_exactly_one_image_file_is_400(api, settings):
    png = small_png()
    reply = api.upload(png, files={"photo": ("p.png", png, "image/png")})
    assert_refused(reply, uploads.MESSAGE_NO_FILE, settings.MEDIA_ROOT)
    reply = requests.post(api.url, data={"image": "not a file"}, files={"x": ("x", b"x")}, auth=api.auth, timeout=30)
    assert_refused(reply, uploads.MESSAGE_NO_FILE, settings.MEDIA_ROOT)
    reply = api.upload(png, files=[("image", ("a.png", png, "image/png")), ("image", ("b.png", png, "image/png"))])
    assert_refused(reply, uploads.MESSAGE_SEVERAL_FILES, settings.MEDIA_ROOT)
    reply = requests.post(api.url, json={"image": "aGVsbG8="}, auth=api.auth, timeout=30)
    assert reply.status_code == 415 and not SourcePhoto.objects.exists()


def test_unknown_product_is_404_and_stores_nothing(api, settings):
    reply = api.upload(small_png(), url=f"{api.base}/api/products/987654/photos/")
    assert reply.status_code == 404
    assert requests.get(f"{api.base}/api/products/987654/photos/", auth=api.auth, timeout=30).status_code == 404
    assert not SourcePhoto.objects.exists() and files_under(settings.MEDIA_ROOT) == []


def test_uploaded_photos_are_listed_newest_first(api):
    first = api.upload(small_png(), "first.png", "image/png").json()
    second = api.upload(encode(photo(), "JPEG"), "second.jpg").json()
    listed = requests.get(api.url, auth=api.auth, timeout=30).json()
    assert [p["id"] for p in listed["results"]] == [second["id"], first["id"]]
    assert [p["original_name"] for p in listed["results"]] == ["second.jpg", "first.png"]
    assert listed["results"][0]["uploaded_by"] == SourcePhoto.objects.get(pk=second["id"]).uploaded_by_id


@pytest.mark.parametrize(
    ("who", "codenames", "is_staff", "post_status", "get_status"),
    [
        ("anonymous", None, False, (401, 403), (401, 403)),
        ("staff-without-permissions", [], True, (403,), (403,)),
        ("shopper-with-the-permissions", ["add_sourcephoto", "view_sourcephoto"], False, (403,), (403,)),
        ("staff-who-may-only-view", ["view_sourcephoto"], True, (403,), (200,)),
        ("staff-who-may-only-add", ["add_sourcephoto"], True, (201,), (403,)),
    ],
)
def test_permissions(live_server, product, django_user_model, fast_passwords, settings, who, codenames, is_staff,
                     post_status, get_status):
    auth = None
    if codenames is not None:
        make_staff(django_user_model, who, codenames, is_staff=is_staff)
        auth = (who, PASSWORD)
    api = Api(live_server.url, product.pk, auth)
    assert api.upload(small_png(), "p.png", "image/png").status_code in post_status
    assert requests.get(api.url, auth=auth, timeout=30).status_code in get_status
    if 201 not in post_status:
        assert not SourcePhoto.objects.exists() and files_under(settings.MEDIA_ROOT) == []


def test_schema_describes_the_multipart_body(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/products/{product_id}/photos/"]["post"]
    body = operation["requestBody"]["content"]
    assert list(body) == ["multipart/form-data"]
    image = body["multipart/form-data"]["schema"]["properties"]["image"]
    assert image["type"] == "string" and image["format"] == "binary"
    assert "201" in operation["responses"]
    assert "get" in schema["paths"]["/api/products/{product_id}/photos/"]


# --- the service, without HTTP -----------------------------------------------------------------------


def test_every_kind_of_input_object_is_read(db):
    png = small_png()
    from_bytes = uploads.normalise_upload(png, name="a.png")
    from_stream = uploads.normalise_upload(io.BytesIO(png), name="b.png")
    from_upload = uploads.normalise_upload(SimpleUploadedFile("c.png", png, "image/png"))
    on_disk = TemporaryUploadedFile("d.png", "image/png", len(png), None)
    on_disk.write(png)
    from_disk = uploads.normalise_upload(on_disk)
    on_disk.close()
    results = [from_bytes, from_stream, from_upload, from_disk]
    assert [r.original_name for r in results] == ["a.png", "b.png", "c.png", "d.png"]
    assert len({r.content.read() for r in results}) == 1


class EndlessStream(io.RawIOBase):
    """A stream that never ends and counts what was read from it (a request body that keeps coming)."""

    def __init__(self) -> None:
        self.served = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        buffer[:] = b"\xff" * len(buffer)
        self.served += len(buffer)
        return len(buffer)


def test_an_endless_stream_is_refused_after_reading_one_byte_past_the_limit(settings):
    settings.IMAGEGEN_UPLOAD_MAX_BYTES = 3 * MB
    stream = EndlessStream()
    with pytest.raises(ValidationError) as refused:
        uploads.normalise_upload(stream, name="endless.jpg")
    assert "larger than 3 MB" in refused.value.message_dict["image"][0]
    assert stream.served == 3 * MB + 1


def test_a_declared_size_over_the_limit_is_refused_before_reading(settings):
    settings.IMAGEGEN_UPLOAD_MAX_BYTES = 1000
    upload = SimpleUploadedFile("p.png", small_png(), "image/png")
    upload.size = 5000  # what Django counted while the file streamed in
    upload.file.close()  # reading it would fail
    with pytest.raises(ValidationError, match="The file is 4.9 KB; the most accepted is 1000 bytes."):
        uploads.normalise_upload(upload)


@pytest.mark.parametrize(
    ("mode", "stored_mode"),
    [("1", "RGB"), ("L", "RGB"), ("LA", "RGBA"), ("P", "RGB"), ("PA", "RGBA"), ("RGBA", "RGBA"), ("CMYK", "RGB"),
     ("YCbCr", "RGB"), ("LAB", "RGB"), ("I;16", "RGB"), ("I;16B", "RGB"), ("I", "RGB"), ("F", "RGB")],
)
def test_every_colour_mode_a_host_allowed_format_can_carry_becomes_rgb_or_rgba(settings, mode, stored_mode):
    """With TIFF allowed (a host's choice), every mode Pillow can decode ends as 8-bit RGB or RGBA."""
    settings.IMAGEGEN_UPLOAD_FORMATS = ("TIFF",)
    fill = {"1": 1, "L": 128, "LA": (128, 255), "P": 0, "PA": (0, 255), "RGBA": (128, 128, 128, 255),
            "CMYK": (0, 0, 0, 127), "YCbCr": (128, 128, 128), "LAB": (138, 128, 128), "I;16": 32896,
            "I;16B": 32896, "I": 32896, "F": 128.0}[mode]
    image = Image.new(mode, (40, 40), fill)
    if mode in ("P", "PA"):
        image.putpalette([128, 128, 128] * 256)
    result = uploads.normalise_upload(encode(image, "TIFF"), name="x.tif")
    assert (result.mode, result.source_format) == (stored_mode, "TIFF")
    with Image.open(result.content) as stored:
        expected = (255, 255, 255) if mode == "1" else (128, 128, 128)
        assert close_to(stored.getpixel((5, 5))[:3], expected, tolerance=2), stored.getpixel((5, 5))


@pytest.mark.parametrize(
    ("sent", "label"),
    [("../../etc/passwd.png", "passwd.png"), ("C:\\Users\\x\\photo.jpg", "photo.jpg"),
     ("evil\u202egnp.exe", "evilgnp.exe"), ("a\x00b\r\nc.png", "abc.png"), ("  spaced   name .png ", "spaced name .png"),
     ("x" * 400 + ".png", "x" * 255), (None, "")],
)
def test_original_names_are_cleaned_labels(sent, label):
    assert uploads.clean_original_name(sent) == label


def test_a_failed_row_leaves_no_file(transactional_db, settings):
    """The product vanished before the row was committed: the foreign key fails at commit, the file goes."""
    image = uploads.normalise_upload(small_png())
    with pytest.raises(Exception) as failed:
        uploads.save_source_photo(SourcePhoto(product_id=987654), image)
    assert "foreign key" in str(failed.value).lower() or "constraint" in str(failed.value).lower()
    assert not SourcePhoto.objects.exists() and files_under(settings.MEDIA_ROOT) == []


def test_a_failed_file_write_leaves_no_row(product, settings):
    # A file where the storage needs its folder: writing the photo fails.
    Path(settings.MEDIA_ROOT).mkdir(parents=True, exist_ok=True)
    (Path(settings.MEDIA_ROOT) / "imagegen").write_text("not a folder")
    with pytest.raises(OSError):
        uploads.add_source_photo(product, small_png())
    assert not SourcePhoto.objects.exists()


def test_uploaded_photos_are_trained_on(make_products, django_user_model):
    from imagegen.services.products import product_photos
    from imagegen.services.training_sets import load_training_set

    (with_photo,) = make_products({"dress": 1})
    (without_photo,) = make_products({"hat": 1}, with_photos=False)
    assert len(list(product_photos([with_photo.pk, without_photo.pk]))) == 1
    uploads.add_source_photo(with_photo, encode(photo(), "JPEG"), name="side.jpg")
    uploads.add_source_photo(without_photo, small_png(), name="front.png")
    uploads.add_source_photo(without_photo, exif_rotated_jpeg(), name="back.jpg")

    photos = list(product_photos([with_photo.pk, without_photo.pk]))
    uploaded = {p.name: p for p in photos if p.name.startswith("imagegen/photos/")}
    assert len(photos) == 4 and len(uploaded) == 3
    assert sorted(p.category for p in uploaded.values()) == ["dress", "hat", "hat"]
    data = load_training_set(photos, 64)
    assert data.skipped == [] and tuple(data.images.shape) == (4, 3, 64, 64)
    assert sorted(data.classes) == ["dress", "hat"]


def test_deleting_a_photo_deletes_its_file_after_commit(product, settings, django_capture_on_commit_callbacks):
    photo_row = uploads.add_source_photo(product, small_png())
    assert files_under(settings.MEDIA_ROOT) == [photo_row.image.name]
    with django_capture_on_commit_callbacks(execute=True):
        photo_row.delete()
    assert files_under(settings.MEDIA_ROOT) == []


@pytest.mark.parametrize(
    ("override", "error_id"),
    [
        ({"IMAGEGEN_UPLOAD_FORMATS": ("JPG", "PNG")}, "imagegen.E011"),
        ({"IMAGEGEN_UPLOAD_FORMATS": ("JPEG", "EPS")}, "imagegen.E012"),
        ({"IMAGEGEN_UPLOAD_MAX_BYTES": 0}, "imagegen.E013"),
        ({"IMAGEGEN_UPLOAD_MIN_SIDE": 100, "IMAGEGEN_UPLOAD_MAX_PIXELS": 5000}, "imagegen.E013"),
    ],
)
def test_checks_report_upload_setting_mistakes(settings, override, error_id):
    from django.core import checks

    assert error_id not in {m.id for m in checks.run_checks()}
    for name, value in override.items():
        setattr(settings, name, value)
    assert error_id in {m.id for m in checks.run_checks()}


def test_check_warns_when_truncated_images_would_be_accepted(monkeypatch):
    from django.core import checks

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    assert "imagegen.W001" in {m.id for m in checks.run_checks()}


# --- the admin form ----------------------------------------------------------------------------------


@pytest.fixture
def photo_admin(client, django_user_model):
    user = make_staff(django_user_model, "photo-admin", ["add_sourcephoto", "view_sourcephoto", "delete_sourcephoto"])
    client.force_login(user)
    client.user = user
    return client


def test_admin_add_form_refuses_bad_uploads_with_the_reason(photo_admin, product, settings):
    for data, reason in [(SVG, "SVG images are not accepted"), (animated("GIF"), "Animated images are not accepted"),
                         (b"", "The file is empty")]:
        page = photo_admin.post(
            "/admin/imagegen/sourcephoto/add/", {"product": product.pk, "image": SimpleUploadedFile("x.png", data)}
        )
        assert page.status_code == 200, "the form is shown again"
        assert reason in page.content.decode()
        assert not SourcePhoto.objects.exists() and files_under(settings.MEDIA_ROOT) == []


def test_admin_add_form_stores_the_normalised_photo_and_shows_it_read_only(photo_admin, product, settings):
    add_page = photo_admin.get("/admin/imagegen/sourcephoto/add/").content.decode()
    assert 'type="file" name="image"' in add_page and 'accept="image/gif,image/jpeg,image/png,image/webp"' in add_page
    reply = photo_admin.post(
        "/admin/imagegen/sourcephoto/add/",
        {"product": product.pk, "image": SimpleUploadedFile("../holiday.jpg", exif_rotated_jpeg(), "text/html")},
    )
    assert reply.status_code == 302
    photo_row = SourcePhoto.objects.get()
    assert (photo_row.width, photo_row.height, photo_row.source_format) == (32, 64, "JPEG")
    assert photo_row.original_name == "holiday.jpg" and photo_row.uploaded_by == photo_admin.user
    assert files_under(settings.MEDIA_ROOT) == [photo_row.image.name] and photo_row.image.name.endswith(".png")
    page = photo_admin.get(f"/admin/imagegen/sourcephoto/{photo_row.pk}/change/").content.decode()
    assert f'src="/media/{photo_row.image.name}"' in page and 'type="file"' not in page
    listing = photo_admin.get("/admin/imagegen/sourcephoto/").content.decode()
    assert "holiday.jpg" in listing and "32×64" in listing


def test_admin_needs_the_add_permission(client, django_user_model, product):
    viewer = make_staff(django_user_model, "viewer", ["view_sourcephoto"])
    client.force_login(viewer)
    assert client.get("/admin/imagegen/sourcephoto/").status_code == 200
    assert client.get("/admin/imagegen/sourcephoto/add/").status_code == 403
    reply = client.post("/admin/imagegen/sourcephoto/add/", {"product": product.pk, "image": SimpleUploadedFile("p.png", small_png())})
    assert reply.status_code == 403 and not SourcePhoto.objects.exists()
