"""Read the optional CSV that gives catalogue images their names, descriptions, prices and attributes."""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path, PurePosixPath

from shop.models import Product

FILE_COLUMN = "file"
ATTRIBUTE_COLUMNS = ("colour", "material", "pattern")
OPTIONAL_COLUMNS = ("name", "description", "price", *ATTRIBUTE_COLUMNS, "attributes")
_NAME_MAX_LENGTH = Product._meta.get_field("name").max_length
_PRICE_FIELD = Product._meta.get_field("price")


class CatalogueCsvError(ValueError):
    """The CSV cannot be used as a whole; the message names the row and column."""


@dataclass(frozen=True)
class ProductDetails:
    """What one CSV row says about one image; blank cells are simply absent."""

    name: str = ""
    description: str = ""
    price: Decimal | None = None
    attributes: dict = field(default_factory=dict)


def normalise_relative_path(value: str) -> str:
    """The form in which catalogue files are keyed: forward slashes, no leading "./"."""
    return PurePosixPath(value.strip().replace("\\", "/")).as_posix()


def read_catalogue_csv(path: Path) -> dict[str, ProductDetails]:
    """Parse and validate the whole CSV, keyed by the normalised ``file`` column.

    Every problem raises :class:`CatalogueCsvError` before anything is imported. Unknown columns are
    rejected rather than ignored, because a misspelt "colur" would otherwise silently drop data;
    extra facets belong in the ``attributes`` JSON column.
    """
    try:
        # utf-8-sig: spreadsheets often save a byte-order mark that would otherwise glue onto "file".
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [column.strip() for column in (reader.fieldnames or [])]
            _check_header(header)
            reader.fieldnames = header
            return _read_rows(reader)
    except OSError as exc:
        raise CatalogueCsvError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CatalogueCsvError(f"{path} is not UTF-8 text: {exc}") from exc
    except csv.Error as exc:
        raise CatalogueCsvError(f"{path} is not valid CSV: {exc}") from exc


def _check_header(header: list[str]) -> None:
    if not header:
        raise CatalogueCsvError("the CSV is empty; it needs a header row with a 'file' column")
    if FILE_COLUMN not in header:
        raise CatalogueCsvError(f"the CSV has no '{FILE_COLUMN}' column (columns: {', '.join(header)})")
    unknown = [column for column in header if column not in (FILE_COLUMN, *OPTIONAL_COLUMNS)]
    if unknown:
        raise CatalogueCsvError(
            f"unknown column(s) {', '.join(map(repr, unknown))}; allowed: "
            f"{', '.join((FILE_COLUMN, *OPTIONAL_COLUMNS))} (put other facets in the 'attributes' JSON)"
        )
    duplicated = sorted({column for column in header if header.count(column) > 1})
    if duplicated:
        raise CatalogueCsvError(f"duplicated column(s) {', '.join(map(repr, duplicated))}")


def _read_rows(reader: csv.DictReader) -> dict[str, ProductDetails]:
    details: dict[str, ProductDetails] = {}
    for row in reader:
        where = f"CSV line {reader.line_num}"
        if None in row:
            raise CatalogueCsvError(f"{where}: more cells than header columns")
        cells = {column: (value or "").strip() for column, value in row.items()}
        if not any(cells.values()):
            continue
        if not cells[FILE_COLUMN]:
            raise CatalogueCsvError(f"{where}: the 'file' cell is empty")
        key = normalise_relative_path(cells[FILE_COLUMN])
        if key in details:
            raise CatalogueCsvError(f"{where}: {key} is listed twice")
        details[key] = _row_details(cells, where)
    return details


def _row_details(cells: dict[str, str], where: str) -> ProductDetails:
    name = cells.get("name", "")
    if len(name) > _NAME_MAX_LENGTH:
        raise CatalogueCsvError(f"{where}: name is longer than {_NAME_MAX_LENGTH} characters")
    attributes = {column: cells[column] for column in ATTRIBUTE_COLUMNS if cells.get(column)}
    attributes.update(_parse_attributes(cells.get("attributes", ""), where))
    return ProductDetails(
        name=name,
        description=cells.get("description", ""),
        price=_parse_price(cells.get("price", ""), where),
        attributes=attributes,
    )


def _parse_price(text: str, where: str) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CatalogueCsvError(f"{where}: price {text!r} is not a number") from None
    if not value.is_finite() or value < 0:
        raise CatalogueCsvError(f"{where}: price {text!r} must be a non-negative number")
    places = _PRICE_FIELD.decimal_places
    if value.as_tuple().exponent < -places:
        raise CatalogueCsvError(f"{where}: price {text!r} has more than {places} decimal places")
    value = value.quantize(Decimal(1).scaleb(-places)) + 0  # "+ 0" turns -0.00 into 0.00
    if len(value.as_tuple().digits) > _PRICE_FIELD.max_digits:
        raise CatalogueCsvError(f"{where}: price {text!r} is too large")
    return value


def _parse_attributes(text: str, where: str) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogueCsvError(f"{where}: attributes is not valid JSON ({exc.msg})") from None
    if not isinstance(value, dict):
        raise CatalogueCsvError(f"{where}: attributes must be a JSON object, not {type(value).__name__}")
    return value
