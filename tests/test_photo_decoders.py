"""Photos from outside (the catalogue import, the host's product images read for training and for their
colour) meet only the allow-listed Pillow decoders, as uploads always did; imported photos are stored
without their metadata."""
import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from PIL import Image, JpegImagePlugin, TiffImagePlugin

from shop.models import Product

GPS_IFD, ARTIST, ORIENTATION = 0x8825, 0x013B, 0x0112


@pytest.fixture
def tiff_opened(monkeypatch):
    """Every time Pillow's TIFF decoder is asked to read a file (a format no product photo needs)."""
    calls = []
    original = TiffImagePlugin.TiffImageFile._open

    def spy(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(TiffImagePlugin.TiffImageFile, "_open", spy)
    return calls


def tiff_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(out, "TIFF")
    return out.getvalue()


def jpeg_with_metadata(size=(60, 40)) -> bytes:
    """A phone photo: GPS position, the photographer's name, an XMP packet, a comment, stored rotated."""
    image = Image.new("RGB", size, (30, 90, 160))
    image.paste((250, 250, 0), (0, 0, 10, 10))  # a marker in the stored top-left corner
    exif = Image.Exif()
    exif[ARTIST] = "Jane Photographer"
    exif[ORIENTATION] = 6
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 12.0)})
    out = io.BytesIO()
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    image.save(out, "JPEG", quality=90, exif=exif, xmp=xmp, comment=b"shot at home")
    return out.getvalue()


@pytest.mark.django_db
def test_import_never_runs_a_decoder_outside_the_allow_list(tmp_path: Path, tiff_opened):
    (tmp_path / "hat").mkdir()
    (tmp_path / "hat" / "scan.jpg").write_bytes(tiff_bytes())
    (tmp_path / "hat" / "ok.jpg").write_bytes(jpeg_with_metadata())
    out = io.StringIO()
    call_command("import_catalogue", str(tmp_path), stdout=out, verbosity=0)
    assert not tiff_opened, "the TIFF decoder saw the bytes"
    assert "hat/scan.jpg" in out.getvalue() and "not an image in a format the shop keeps" in out.getvalue()
    assert list(Product.objects.values_list("slug", flat=True)) == ["hat-ok"]


@pytest.mark.django_db
def test_imported_photos_are_stored_without_metadata_and_upright(tmp_path: Path):
    (tmp_path / "hat").mkdir()
    (tmp_path / "hat" / "phone.jpg").write_bytes(jpeg_with_metadata((60, 40)))
    call_command("import_catalogue", str(tmp_path), stdout=io.StringIO(), verbosity=0)
    with Product.objects.get().image.open("rb") as fh:
        data = fh.read()
    assert b"Jane Photographer" not in data and b"xmpmeta" not in data and b"shot at home" not in data
    with Image.open(io.BytesIO(data)) as stored:
        assert stored.format == "JPEG"
        exif = stored.getexif()
        assert ARTIST not in exif and ORIENTATION not in exif and not exif.get_ifd(GPS_IFD)
        assert stored.size == (40, 60), "turned upright, since the orientation tag is gone"
        # Orientation 6 turns the picture clockwise: the stored top-left marker is now top-right.
        assert stored.convert("RGB").getpixel((35, 3))[2] < 100


def test_a_jpeg_without_rotation_keeps_its_quantisation_tables():
    from shop.services.photo_metadata import without_metadata

    out = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(out, "JPEG", quality=70)
    clean = without_metadata(out.getvalue())
    with Image.open(out) as before, Image.open(io.BytesIO(clean)) as after:
        assert isinstance(after, JpegImagePlugin.JpegImageFile)
        assert after.quantization == before.quantization


@pytest.mark.django_db
def test_a_host_photo_in_another_format_is_unreadable_for_colour_and_training(make_products, tiff_opened, settings):
    from imagegen.services.decoded_photos import decode_photo
    from imagegen.services.products import photo_colour, product_photos

    (product,) = make_products({"hat": 1})
    # The host's own admin stored a TIFF as the product's photo: imagegen's checks never saw it.
    product.image.save("scan.jpg", ContentFile(tiff_bytes()), save=True)
    (photo,) = [p for p in product_photos([product.pk]) if p.name == product.image.name]
    assert photo_colour(photo) is None
    with pytest.raises(ValueError, match="format that may be read"):
        decode_photo(photo, 64)
    assert not tiff_opened, "the TIFF decoder saw the bytes"
    settings.IMAGEGEN_UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF")
    assert photo_colour(photo) == "red", "the allow-list is the setting, the same one uploads obey"
