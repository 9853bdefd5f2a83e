"""import_catalogue: good images become products, bad files are reported, failures leave nothing behind."""
from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command
from PIL import Image, ImageChops

from shop.models import Category, Product, ProductImage

DEMO_CATALOGUE = Path(__file__).resolve().parent.parent / "shop" / "demo_catalogue"


def _save_image(path: Path, colour: tuple[int, int, int], image_format: str, size=(48, 32)) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, image_format)
    return path.read_bytes()


def _truncated_jpeg() -> bytes:
    # Noise compresses badly, so cutting the file in half is sure to cut into the scan data.
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 80).convert("RGB").save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    return data[: len(data) // 2]


GOOD = {"dress/red.jpg", "dress/blue.png", "hat/green.jpg"}
BAD = {
    "hat/empty.jpg": "empty file",
    "hat/notes.jpg": "not an image",
    "dress/truncated.jpg": "truncated",
    "dress/page.html": "not an image",
}


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """DIR/<category>/<file> with three good images, four bad files and files to be ignored."""
    root = tmp_path / "catalogue"
    _save_image(root / "dress" / "red.jpg", (200, 20, 30), "JPEG")
    _save_image(root / "dress" / "blue.png", (20, 40, 200), "PNG")
    _save_image(root / "hat" / "green.jpg", (20, 150, 40), "JPEG")
    (root / "hat" / "empty.jpg").write_bytes(b"")
    (root / "hat" / "notes.jpg").write_text("this is not a photo\n")
    (root / "dress" / "truncated.jpg").write_bytes(_truncated_jpeg())
    (root / "dress" / "page.html").write_text("<!doctype html><html><body>404</body></html>")
    # Neither a top-level file nor a hidden file is a product.
    (root / "README.txt").write_text("catalogue notes")
    (root / "hat" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    return root


def _write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def _run(*args, **options) -> str:
    out = io.StringIO()
    call_command("import_catalogue", *map(str, args), stdout=out, verbosity=0, **options)
    return out.getvalue()


@pytest.mark.django_db
def test_imports_good_images_and_reports_bad_files(catalogue: Path) -> None:
    output = _run(catalogue)

    products = {p.slug: p for p in Product.objects.select_related("category")}
    assert set(products) == {"dress-red", "dress-blue", "hat-green"}
    assert {p.category.slug for p in products.values()} == {"dress", "hat"}
    assert products["dress-red"].category.name == "Dress"
    assert products["dress-red"].name == "Red"
    assert products["dress-red"].attributes == {}
    expected = (("dress/red.jpg", "dress-red"), ("dress/blue.png", "dress-blue"), ("hat/green.jpg", "hat-green"))
    for relative, slug in expected:
        stored = products[slug].image
        assert stored.name.startswith("products/") and stored.name.endswith(Path(relative).suffix)
        with stored.open("rb") as handle, Image.open(handle) as kept, Image.open(catalogue / relative) as original:
            # Re-written without metadata: the same picture (JPEG re-encoded with its own tables).
            assert kept.format == original.format and kept.size == original.size
            difference = ImageChops.difference(kept.convert("RGB"), original.convert("RGB")).getextrema()
            assert max(high for _, high in difference) <= 2
    # Nothing beyond the three products: no extra categories, gallery rows or files.
    assert Category.objects.count() == 2
    assert ProductImage.objects.count() == 0
    assert len(_media_files()) == 3

    assert "Imported 3 products, skipped 0 existing, 4 bad files" in output
    for path, reason in BAD.items():
        line = next((line for line in output.splitlines() if path in line), "")
        assert reason in line, f"{path} not reported with '{reason}':\n{output}"
    assert "README" not in output and "DS_Store" not in output


@pytest.mark.django_db
def test_csv_sets_name_description_price_and_attributes(catalogue: Path, tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "catalogue.csv",
        [
            {
                "file": "dress/red.jpg",
                "name": "Crimson summer dress",
                "description": "Light cotton dress.",
                "price": "49.90",
                "colour": "red",
                "material": "cotton",
                "pattern": "",
                "attributes": json.dumps({"size": "M", "season": "summer"}),
            },
            {"file": "hat/green.jpg", "name": "", "description": "", "price": "", "colour": "green",
             "material": "", "pattern": "plain", "attributes": ""},
        ],
    )
    _run(catalogue, csv=csv_path)

    dress = Product.objects.get(slug="dress-red")
    assert dress.name == "Crimson summer dress"
    assert dress.description == "Light cotton dress."
    assert dress.price == Decimal("49.90")
    assert dress.attributes == {"colour": "red", "material": "cotton", "size": "M", "season": "summer"}
    hat = Product.objects.get(slug="hat-green")
    assert hat.name == "Green" and hat.price is None
    assert hat.attributes == {"colour": "green", "pattern": "plain"}
    assert Product.objects.get(slug="dress-blue").attributes == {}


@pytest.mark.django_db
def test_rerun_skips_products_already_imported(catalogue: Path) -> None:
    _run(catalogue)
    first_images = set(Product.objects.values_list("image", flat=True))

    output = _run(catalogue)

    assert "Imported 0 products, skipped 3 existing, 4 bad files" in output
    assert Product.objects.count() == 3
    assert set(Product.objects.values_list("image", flat=True)) == first_images
    assert len(_media_files()) == 3


@pytest.mark.django_db
def test_limit_caps_new_products_and_the_next_run_continues(catalogue: Path) -> None:
    output = _run(catalogue, limit=2)
    assert Product.objects.count() == 2
    assert "stopped at --limit" in output

    output = _run(catalogue)
    assert "Imported 1 products, skipped 2 existing" in output
    assert Product.objects.count() == 3


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"file": "hat/green.jpg", "price": "cheap"}, "not a number"),
        ({"file": "hat/green.jpg", "price": "12.345"}, "decimal places"),
        ({"file": "hat/green.jpg", "price": "-1"}, "non-negative"),
        ({"file": "hat/green.jpg", "attributes": "{colour: red"}, "not valid JSON"),
        ({"file": "hat/green.jpg", "attributes": '["red"]'}, "JSON object"),
        ({"file": "hat/missing.jpg", "price": "10"}, "not in <category>/ folders"),
        ({"file": "hat/green.jpg", "colur": "red"}, "unknown column"),
        ({"path": "hat/green.jpg", "price": "10"}, "no 'file' column"),
    ],
)
@pytest.mark.django_db
def test_bad_csv_fails_the_whole_import_and_changes_nothing(
    catalogue: Path, tmp_path: Path, row: dict[str, str], message: str
) -> None:
    Category.objects.create(name="Existing", slug="existing")
    # A valid row first: an error further down must still stop the rows before it.
    valid = {column: "" for column in row} | {"file": "dress/red.jpg"} if "file" in row else None
    csv_path = _write_csv(tmp_path / "bad.csv", [valid, row] if valid else [row])

    with pytest.raises(CommandError, match=message):
        _run(catalogue, csv=csv_path)

    assert Product.objects.count() == 0
    assert list(Category.objects.values_list("slug", flat=True)) == ["existing"]
    assert _media_files() == []


@pytest.mark.django_db
def test_failure_mid_way_rolls_back_products_and_deletes_stored_files(
    catalogue: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original_save = FileSystemStorage._save
    calls: list[str] = []

    def failing_save(self, name, content):
        calls.append(name)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return original_save(self, name, content)

    monkeypatch.setattr(FileSystemStorage, "_save", failing_save)

    with pytest.raises(RuntimeError, match="disk full"):
        _run(catalogue)

    assert len(calls) == 3  # two files really were written before the failure
    assert Product.objects.count() == 0
    assert Category.objects.count() == 0
    assert _media_files() == []


@pytest.mark.django_db
def test_file_changed_after_its_check_fails_the_import_and_leaves_nothing(
    catalogue: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shop.services import catalogue_import

    real_check = catalogue_import.check_image
    checks: list[bytes] = []

    def check_then_overwrite(data: bytes):
        result = real_check(data)
        checks.append(data)
        # Someone keeps replacing a photo, so it differs between the checking and the writing pass.
        _save_image(catalogue / "dress" / "red.jpg", (len(checks) * 40, 0, 0), "JPEG")
        return result

    monkeypatch.setattr(catalogue_import, "check_image", check_then_overwrite)

    with pytest.raises(CommandError, match="dress/red.jpg changed during the import"):
        _run(catalogue)

    assert Product.objects.count() == 0
    assert Category.objects.count() == 0
    assert _media_files() == []  # dress/blue.png was stored before the mismatch, then removed


@pytest.mark.django_db
def test_decompression_bomb_is_reported_not_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "bombs"
    _save_image(root / "dress" / "huge.png", (10, 10, 10), "PNG", size=(64, 64))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64x64 is more than twice that: an error

    output = _run(root)

    assert "dress/huge.png: decompression bomb" in output
    assert Product.objects.count() == 0
    assert _media_files() == []


@pytest.mark.django_db
def test_png_named_jpg_is_stored_with_a_png_extension(tmp_path: Path) -> None:
    root = tmp_path / "mislabelled"
    _save_image(root / "shoes" / "boot.jpg", (90, 60, 30), "PNG")

    _run(root)

    assert Product.objects.get().image.name.endswith("/shoes-boot.png")


@pytest.mark.django_db
def test_missing_directory_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not a directory"):
        _run(tmp_path / "nowhere")
    assert Product.objects.count() == 0


@pytest.mark.django_db
def test_demo_catalogue_imports_400_products_in_10_categories() -> None:
    _run(DEMO_CATALOGUE, csv=DEMO_CATALOGUE / "catalogue.csv")

    assert Product.objects.count() == 400
    assert Category.objects.count() == 10
    assert set(Category.objects.values_list("products__category", flat=True).distinct()) == set(
        Category.objects.values_list("pk", flat=True)
    )
    for category in Category.objects.all():
        assert category.products.count() == 40, category.slug
    colours = [p.attributes.get("colour") for p in Product.objects.all()]
    assert all(colours), "every demo product has a colour"
    assert len(set(colours)) >= 8, "colours are computed per photo, not one constant"
    assert not Product.objects.filter(price__isnull=True).exists()
    assert Product.objects.filter(name__endswith=" dress", category__slug="dress").count() == 40
    assert len(_media_files()) == 400


def test_demo_catalogue_files_are_small_and_licensed() -> None:
    images = sorted(DEMO_CATALOGUE.glob("*/*.jpg"))
    assert len(images) == 400
    assert sum(p.stat().st_size for p in images) < 8_000_000
    for path in images[::20]:
        with Image.open(path) as image:
            assert max(image.size) <= 160 and image.format == "JPEG"
    assert (DEMO_CATALOGUE / "LICENSE-CC0-1.0.txt").is_file()
    with open(DEMO_CATALOGUE / "catalogue.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["file"] for row in rows} == {f"{p.parent.name}/{p.name}" for p in images}


def _fake_dataset(root: Path) -> Path:
    """A miniature clothing-dataset-small: two classes of red or blue garments on white, plus test/."""
    for split, class_name, colour, stems in (
        ("train", "dress", (200, 25, 35), ["c", "a", "b"]),
        ("train", "shoes", (30, 60, 190), ["z", "y"]),
        ("test", "dress", (20, 150, 40), ["0-test-only"]),
    ):
        for stem in stems:
            image = Image.new("RGB", (400, 600), (250, 250, 250))
            image.paste(colour, (100, 150, 300, 450))
            (root / split / class_name).mkdir(parents=True, exist_ok=True)
            image.save(root / split / class_name / f"{stem}.jpg", quality=95)
    (root / "LICENSE-CC0-1.0.txt").write_text("CC0 1.0 Universal")
    return root


def test_build_demo_catalogue_selects_train_images_downscales_and_names_colours(tmp_path: Path) -> None:
    source = _fake_dataset(tmp_path / "dataset")
    output = tmp_path / "demo"
    (output / "dress").mkdir(parents=True)
    (output / "dress" / "stale.jpg").write_bytes(b"from an older build")

    call_command(
        "build_demo_catalogue", str(source), "--per-class", "2", "--max-side", "60", "--output", str(output),
        stdout=io.StringIO(), verbosity=0,
    )

    assert sorted(p.relative_to(output).as_posix() for p in output.glob("*/*.jpg")) == [
        "dress/a.jpg", "dress/b.jpg", "shoes/y.jpg", "shoes/z.jpg",
    ]
    with Image.open(output / "dress" / "a.jpg") as image:
        assert image.size == (40, 60)
    with open(output / "catalogue.csv", newline="") as handle:
        rows = {row["file"]: row for row in csv.DictReader(handle)}
    assert rows["dress/a.jpg"]["colour"] == "red"
    assert rows["dress/a.jpg"]["name"] == "Red dress"
    assert rows["shoes/y.jpg"]["colour"] == "blue"
    assert rows["shoes/y.jpg"]["description"] == "A pair of blue shoes from the demo catalogue."
    assert Decimal("44.99") <= Decimal(rows["shoes/y.jpg"]["price"]) <= Decimal("109.99")
    assert (output / "LICENSE-CC0-1.0.txt").read_text() == "CC0 1.0 Universal"


def test_build_demo_catalogue_refuses_a_folder_without_train_split(tmp_path: Path) -> None:
    (tmp_path / "test" / "dress").mkdir(parents=True)
    with pytest.raises(CommandError, match="no train/ folder"):
        call_command("build_demo_catalogue", str(tmp_path), "--output", str(tmp_path / "out"), verbosity=0)
    assert not (tmp_path / "out").exists()
