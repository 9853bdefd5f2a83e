"""Build the demo shop's catalogue folder from the CC0 clothing-dataset-small photos.

Only the dataset's ``train`` split is read, so that the demo catalogue (and every model trained
on it) never sees the images kept aside for testing. Selection is deterministic (sorted file
names, first N per class) and so are the downscaled JPEGs, colours and prices, so rebuilding
with the same Pillow version gives the same files.
"""
from __future__ import annotations

import csv
import hashlib
import shutil
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from PIL import Image, ImageOps
from tqdm import tqdm

from mlcore.conditioning.colour import dominant_colour_name

SOURCE_SPLIT = "train"
LICENSE_FILE = "LICENSE-CC0-1.0.txt"
CSV_FILE = "catalogue.csv"
# Longest side of the demo photos; their colours are named at this size.
MAX_SIDE = 160
CSV_COLUMNS = ("file", "name", "description", "price", "colour", "material", "pattern")
_SOURCE_SUFFIXES = (".jpg", ".jpeg")


class DemoCatalogueError(Exception):
    """The source folder cannot be used; nothing was written."""


@dataclass(frozen=True)
class ClassInfo:
    """How the products of one dataset class are named and priced."""

    noun: str
    # "{a_colour}" becomes "a navy"/"an orange"; "{colour}" is the bare colour name.
    described_as: str
    lowest_price: Decimal
    highest_price: Decimal


# Mid-market prices; the dataset has none, so these only need to look plausible side by side.
CLASSES: dict[str, ClassInfo] = {
    "dress": ClassInfo("dress", "{a_colour} dress", Decimal("39.99"), Decimal("89.99")),
    "hat": ClassInfo("hat", "{a_colour} hat", Decimal("14.99"), Decimal("34.99")),
    "longsleeve": ClassInfo("long-sleeve top", "{a_colour} long-sleeve top", Decimal("19.99"), Decimal("44.99")),
    "outwear": ClassInfo("outerwear", "a piece of {colour} outerwear", Decimal("69.99"), Decimal("149.99")),
    "pants": ClassInfo("pants", "a pair of {colour} pants", Decimal("34.99"), Decimal("69.99")),
    "shirt": ClassInfo("shirt", "{a_colour} shirt", Decimal("29.99"), Decimal("59.99")),
    "shoes": ClassInfo("shoes", "a pair of {colour} shoes", Decimal("44.99"), Decimal("109.99")),
    "shorts": ClassInfo("shorts", "a pair of {colour} shorts", Decimal("19.99"), Decimal("39.99")),
    "skirt": ClassInfo("skirt", "{a_colour} skirt", Decimal("24.99"), Decimal("54.99")),
    "t-shirt": ClassInfo("T-shirt", "{a_colour} T-shirt", Decimal("12.99"), Decimal("27.99")),
}
_PRICE_STEP = Decimal("5.00")


@dataclass
class BuildReport:
    """What a build wrote: images per class, their total size, and stale images it removed."""

    images_per_class: dict[str, int] = field(default_factory=dict)
    image_bytes: int = 0
    removed: list[str] = field(default_factory=list)


def build_demo_catalogue(
    source_dir: Path | str,
    output_dir: Path | str,
    *,
    per_class: int = 40,
    max_side: int = MAX_SIDE,
    quality: int = 85,
    progress: bool | None = None,
) -> BuildReport:
    """Write ``output_dir/<class>/<stem>.jpg``, ``catalogue.csv`` and the licence from ``source_dir``.

    ``source_dir`` is the dataset root (the folder holding ``train/``). The first ``per_class``
    JPEGs of each class, by sorted file name, are downscaled so the longer side is at most
    ``max_side`` pixels and re-encoded at JPEG ``quality`` without metadata. Images of an earlier
    build that are no longer selected are removed; other files in ``output_dir`` are left alone.
    """
    source_dir, output_dir = Path(source_dir), Path(output_dir)
    selection = select_source_images(source_dir, per_class)
    licence = source_dir / LICENSE_FILE
    if not licence.is_file():
        # CC0 needs no attribution, but the data should never travel without its licence text.
        raise DemoCatalogueError(f"{licence} is missing")
    if per_class < 1 or max_side < 16 or not 1 <= quality <= 95:
        raise DemoCatalogueError("per_class must be >= 1, max_side >= 16 and quality between 1 and 95")

    report = BuildReport()
    rows: list[dict[str, str]] = []
    written: set[Path] = set()
    with tqdm(selection, desc="Downscaling", unit="image", disable=None if progress is None else not progress) as bar:
        for class_name, source in bar:
            target = output_dir / class_name / f"{source.stem}.jpg"
            image = _downscale(source, max_side)
            target.parent.mkdir(parents=True, exist_ok=True)
            image.save(target, "JPEG", quality=quality, optimize=True)
            written.add(target)
            report.images_per_class[class_name] = report.images_per_class.get(class_name, 0) + 1
            report.image_bytes += target.stat().st_size
            colour = dominant_colour_name(image)
            details = describe_product(class_name, colour, source.stem)
            rows.append({"file": f"{class_name}/{target.name}", "colour": colour, **details})

    report.removed = _remove_stale_images(output_dir, written)
    _write_csv(output_dir / CSV_FILE, rows)
    shutil.copyfile(licence, output_dir / LICENSE_FILE)
    return report


def select_source_images(source_dir: Path, per_class: int) -> list[tuple[str, Path]]:
    """The (class, path) pairs a build uses: the first ``per_class`` train JPEGs of each class."""
    train = source_dir / SOURCE_SPLIT
    if not train.is_dir():
        raise DemoCatalogueError(f"{source_dir} has no {SOURCE_SPLIT}/ folder; pass the dataset's root folder")
    selection: list[tuple[str, Path]] = []
    for class_dir in sorted(p for p in train.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in class_dir.iterdir() if p.is_file() and p.suffix.lower() in _SOURCE_SUFFIXES)
        selection.extend((class_dir.name, path) for path in images[:per_class])
    if not selection:
        raise DemoCatalogueError(f"{train} holds no <class>/*.jpg images")
    return selection


def describe_product(class_name: str, colour: str, stem: str) -> dict[str, str]:
    """Name, description and price of the product made from one photo of class ``class_name``."""
    info = CLASSES.get(class_name) or ClassInfo(
        class_name.replace("-", " "), "{a_colour} " + class_name.replace("-", " "), Decimal("19.99"), Decimal("49.99")
    )
    article = "an" if colour[:1] in "aeiou" else "a"
    described = info.described_as.format(colour=colour, a_colour=f"{article} {colour}")
    return {
        "name": f"{colour.capitalize()} {info.noun}",
        "description": f"{described[:1].upper()}{described[1:]} from the demo catalogue.",
        "price": str(_price(info, stem)),
        # No material or pattern: nothing in the photos or the dataset's labels supports a guess.
        "material": "",
        "pattern": "",
    }


def _price(info: ClassInfo, stem: str) -> Decimal:
    # A hash of the file name rather than random(): the same photo always gets the same price.
    steps = int((info.highest_price - info.lowest_price) / _PRICE_STEP) + 1
    index = int(hashlib.sha256(stem.encode()).hexdigest(), 16) % steps
    return info.lowest_price + index * _PRICE_STEP


def _downscale(source: Path, max_side: int) -> Image.Image:
    with Image.open(source) as original:
        # Phones store rotation in EXIF; applying it now keeps photos upright once the EXIF is dropped.
        image = ImageOps.exif_transpose(original).convert("RGB")
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return image


def _remove_stale_images(output_dir: Path, written: set[Path]) -> list[str]:
    removed: list[str] = []
    for class_dir in sorted(p for p in output_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(class_dir.iterdir()):
            if path.is_file() and path.suffix.lower() in _SOURCE_SUFFIXES and path not in written:
                path.unlink()
                removed.append(f"{class_dir.name}/{path.name}")
        if not any(class_dir.iterdir()):
            class_dir.rmdir()
    return removed


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: row["file"]))
