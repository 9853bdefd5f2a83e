"""manage.py import_catalogue DIR [--csv FILE] [--limit N]: import product photos as products."""
from __future__ import annotations

import argparse
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from shop.services.catalogue_import import CatalogueError, ImportReport, import_catalogue


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class Command(BaseCommand):
    help = (
        "Import DIR/<category>/<image> files as products (one per image, category from the folder). "
        "Products already imported are skipped; files that are not good images are listed and skipped. "
        "Either everything new is imported or, on failure, nothing is."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("directory", type=Path, help="catalogue folder laid out as DIR/<category>/<image>")
        parser.add_argument(
            "--csv",
            dest="csv_path",
            type=Path,
            help="CSV with a 'file' column (path relative to DIR) and optional name, description, price, "
            "colour, material, pattern and attributes (a JSON object) columns",
        )
        parser.add_argument("--limit", type=_positive_int, help="import at most N new products")

    def handle(self, *args, directory: Path, csv_path: Path | None, limit: int | None, **options) -> None:
        try:
            report = import_catalogue(
                directory, csv_path, limit=limit, progress=None if options["verbosity"] > 0 else False
            )
        except CatalogueError as exc:
            raise CommandError(f"Import failed, nothing was imported: {exc}") from exc
        self._print_summary(report)

    def _print_summary(self, report: ImportReport) -> None:
        self.stdout.write(
            self.style.SUCCESS(f"Imported {len(report.imported)} products")
            + f", skipped {len(report.skipped_existing)} existing, {len(report.bad_files)} bad files"
            + (" (stopped at --limit)" if report.stopped_at_limit else "")
            + "."
        )
        for bad in report.bad_files:
            self.stdout.write(self.style.WARNING(f"  bad file {bad.path}: {bad.reason}"))
