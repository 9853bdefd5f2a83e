"""Import a folder of product photos laid out as ``DIR/<category>/<image>``, all or nothing.

The import runs in two passes. The first decides everything without writing anything: it lists
the files, reads the CSV, skips products that already exist and decodes every new image. The
second stores the images and creates the rows in one transaction; if anything escapes it, the
transaction rolls back and the files already stored are deleted again, so a failed import leaves
neither half a catalogue nor orphaned files behind.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import transaction
from django.utils.text import slugify
from tqdm import tqdm

from shop.models import Category, Product

from .catalogue_csv import CatalogueCsvError, ProductDetails, normalise_relative_path, read_catalogue_csv
from .image_check import BadImage, check_image
from .photo_metadata import without_metadata

logger = logging.getLogger(__name__)

_CATEGORY_SLUG_MAX = Category._meta.get_field("slug").max_length
_CATEGORY_NAME_MAX = Category._meta.get_field("name").max_length
_PRODUCT_SLUG_MAX = Product._meta.get_field("slug").max_length
_PRODUCT_NAME_MAX = Product._meta.get_field("name").max_length
# Stays well under every backend's limit on query parameters (SQLite's was 999 before 3.32).
_LOOKUP_CHUNK = 500


class CatalogueError(Exception):
    """The import as a whole cannot go ahead (bad folder, bad CSV, a file changed); nothing was kept."""


@dataclass(frozen=True)
class CatalogueFile:
    """One file found at ``DIR/<category>/<name>``, and the product it would become."""

    path: Path
    relative_path: str
    category_folder: str
    category_slug: str
    product_slug: str


@dataclass(frozen=True)
class BadFile:
    """A file that was not imported, and why."""

    path: str
    reason: str


@dataclass
class ImportReport:
    """Outcome of a successful import: product slugs created, files skipped as existing, bad files."""

    imported: list[str] = field(default_factory=list)
    skipped_existing: list[str] = field(default_factory=list)
    bad_files: list[BadFile] = field(default_factory=list)
    stopped_at_limit: bool = False


@dataclass(frozen=True)
class _Planned:
    file: CatalogueFile
    digest: str
    extension: str
    details: ProductDetails


def import_catalogue(
    directory: Path | str,
    csv_path: Path | str | None = None,
    *,
    limit: int | None = None,
    progress: bool | None = None,
) -> ImportReport:
    """Import every new image under ``directory`` as a product and return what happened.

    ``csv_path`` optionally names a CSV with per-file details (see :mod:`shop.services.catalogue_csv`).
    ``limit`` caps the number of *new* products, so repeating a limited run imports the next batch.
    ``progress`` shows tqdm bars on stderr: True always, False never, None only on a terminal.
    Files that are not good images are reported in the result and skipped. Raises
    :class:`CatalogueError`, having changed nothing, when the import as a whole cannot go ahead;
    any other exception also leaves nothing behind and propagates unchanged.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CatalogueError(f"{directory} is not a directory")
    if limit is not None and limit < 1:
        raise CatalogueError(f"limit must be a positive number, not {limit}")
    report = ImportReport()
    files = find_catalogue_files(directory, report.bad_files)
    details = _read_details(csv_path, files) if csv_path is not None else {}
    planned = _plan(files, details, limit, report, progress)
    _write(planned, report, progress)
    return report


def find_catalogue_files(directory: Path, bad_files: list[BadFile] | None = None) -> list[CatalogueFile]:
    """List candidate image files under ``directory`` in a stable (sorted) order.

    Only ``DIR/<category>/<file>`` counts: files at the top level (a README, the CSV itself) are
    ignored, and so are hidden files and folders (.DS_Store, .git). Folders nested inside a
    category are appended to ``bad_files`` when given, since their images would be missed silently.
    """
    found: list[CatalogueFile] = []
    for category_dir in _visible_children(directory):
        if not category_dir.is_dir():
            continue
        category_slug = make_slug(category_dir.name, _CATEGORY_SLUG_MAX)
        for path in _visible_children(category_dir):
            relative = f"{category_dir.name}/{path.name}"
            if path.is_dir():
                if bad_files is not None:
                    bad_files.append(BadFile(relative, "is a folder; images must sit directly in DIR/<category>/"))
                continue
            found.append(
                CatalogueFile(
                    path=path,
                    relative_path=relative,
                    category_folder=category_dir.name,
                    category_slug=category_slug,
                    product_slug=product_slug_for(category_slug, path.stem),
                )
            )
    return found


def product_slug_for(category_slug: str, file_stem: str) -> str:
    """The product slug of a catalogue file: stable, so re-running an import recognises it."""
    stem_room = _PRODUCT_SLUG_MAX - len(category_slug) - 1
    return f"{category_slug}-{make_slug(file_stem, stem_room)}"


def make_slug(text: str, max_length: int) -> str:
    """``slugify(text)`` cut to ``max_length``; a hash keeps cut or empty slugs distinct and stable."""
    slug = slugify(text)
    if slug and len(slug) <= max_length:
        return slug
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{slug[: max_length - len(digest) - 1]}-{digest}".strip("-") if slug else digest


def _visible_children(directory: Path) -> list[Path]:
    return sorted(child for child in directory.iterdir() if not child.name.startswith("."))


def _read_details(csv_path: Path | str, files: list[CatalogueFile]) -> dict[str, ProductDetails]:
    try:
        details = read_catalogue_csv(Path(csv_path))
    except CatalogueCsvError as exc:
        raise CatalogueError(f"{csv_path}: {exc}") from exc
    known = {normalise_relative_path(f.relative_path) for f in files}
    unknown = sorted(set(details) - known)
    if unknown:
        # Most likely the CSV belongs to another folder; importing without its details would be wrong.
        shown = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise CatalogueError(
            f"{csv_path}: rows name files that are not in <category>/ folders of the catalogue: {shown}"
        )
    return details


def _plan(
    files: list[CatalogueFile],
    details: dict[str, ProductDetails],
    limit: int | None,
    report: ImportReport,
    progress: bool | None,
) -> list[_Planned]:
    existing = _existing_slugs(f.product_slug for f in files)
    claimed: dict[str, str] = {}
    planned: list[_Planned] = []
    with _bar(files, "Checking images", progress) as bar:
        for file in bar:
            if limit is not None and len(planned) >= limit:
                report.stopped_at_limit = True
                break
            if file.product_slug in claimed:
                # "a.jpg"/"a.png" or "a b.jpg"/"a-b.jpg" map to one slug; renaming is the user's call.
                reason = f"same product slug as {claimed[file.product_slug]}; rename one of them"
                report.bad_files.append(BadFile(file.relative_path, reason))
                continue
            claimed[file.product_slug] = file.relative_path
            if file.product_slug in existing:
                report.skipped_existing.append(file.relative_path)
                continue
            try:
                data = file.path.read_bytes()
            except OSError as exc:
                report.bad_files.append(BadFile(file.relative_path, f"unreadable: {exc.strerror or exc}"))
                continue
            try:
                checked = check_image(data)
            except BadImage as exc:
                report.bad_files.append(BadFile(file.relative_path, str(exc)))
                continue
            planned.append(
                _Planned(
                    file=file,
                    digest=hashlib.sha256(data).hexdigest(),
                    extension=checked.extension_for(file.path.name),
                    details=details.get(normalise_relative_path(file.relative_path), ProductDetails()),
                )
            )
    return planned


def _existing_slugs(slugs: Iterable[str]) -> set[str]:
    slugs = list(slugs)
    existing: set[str] = set()
    for start in range(0, len(slugs), _LOOKUP_CHUNK):
        chunk = slugs[start : start + _LOOKUP_CHUNK]
        existing.update(Product.objects.filter(slug__in=chunk).values_list("slug", flat=True))
    return existing


def _write(planned: list[_Planned], report: ImportReport, progress: bool | None) -> None:
    stored: list[tuple[Storage, str]] = []
    try:
        with transaction.atomic(), _bar(planned, "Importing", progress) as bar:
            categories: dict[str, Category] = {}
            for item in bar:
                product = _store_product(item, categories, stored)
                report.imported.append(product.slug)
    except BaseException:
        # BaseException: a Ctrl-C half-way must not leave orphaned files either.
        _delete_stored(stored)
        report.imported.clear()
        raise


def _store_product(item: _Planned, categories: dict[str, Category], stored: list[tuple[Storage, str]]) -> Product:
    category = categories.get(item.file.category_slug)
    if category is None:
        category = categories[item.file.category_slug] = _category_for(item.file)
    product = _new_product(item, category)
    # The bytes are read again rather than kept from the check, so memory stays flat on large
    # catalogues; the digest guarantees that they are the bytes that were checked.
    try:
        data = item.file.path.read_bytes()
    except OSError as exc:
        raise CatalogueError(f"{item.file.relative_path} disappeared during the import: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != item.digest:
        raise CatalogueError(f"{item.file.relative_path} changed during the import; run it again")
    try:
        clean = without_metadata(data)
    except (OSError, ValueError) as exc:
        raise CatalogueError(f"{item.file.relative_path} could not be re-written without its metadata: {exc}") from exc
    product.image.save(f"{product.slug}{item.extension}", ContentFile(clean), save=False)
    stored.append((product.image.storage, product.image.name))
    product.save()
    return product


def _category_for(file: CatalogueFile) -> Category:
    name = file.category_folder.replace("_", " ").strip().title()[:_CATEGORY_NAME_MAX] or file.category_slug
    # An existing category keeps its (possibly edited) name; only its slug has to match.
    category, _ = Category.objects.get_or_create(slug=file.category_slug, defaults={"name": name})
    return category


def _new_product(item: _Planned, category: Category) -> Product:
    details = item.details
    return Product(
        name=details.name or _name_from_stem(item.file.path.stem),
        slug=item.file.product_slug,
        category=category,
        description=details.description,
        price=details.price,
        attributes=dict(details.attributes),
    )


def _name_from_stem(stem: str) -> str:
    words = " ".join(stem.replace("_", " ").replace("-", " ").split())
    return (words[:1].upper() + words[1:])[:_PRODUCT_NAME_MAX] or stem[:_PRODUCT_NAME_MAX]


def _delete_stored(stored: list[tuple[Storage, str]]) -> None:
    for storage, name in stored:
        try:
            storage.delete(name)
        except Exception:  # noqa: BLE001 - keep cleaning up; the original error is the one to raise
            logger.exception("could not delete %s after a failed catalogue import", name)


def _bar(items: list, description: str, progress: bool | None) -> tqdm:
    # disable=None is tqdm's "only on a terminal", so logs and CI output stay free of bar redraws.
    return tqdm(items, desc=description, unit="file", disable=None if progress is None else not progress)
