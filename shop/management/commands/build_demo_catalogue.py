"""manage.py build_demo_catalogue SOURCE_DIR: regenerate shop/demo_catalogue from the dataset."""
from __future__ import annotations

import argparse
from pathlib import Path

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError

from shop.services.demo_catalogue import DemoCatalogueError, build_demo_catalogue


class Command(BaseCommand):
    help = (
        "Rebuild the demo catalogue (downscaled JPEGs, catalogue.csv, licence) from the CC0 "
        "clothing-dataset-small folder SOURCE_DIR; only its train/ split is read."
    )

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("source_dir", type=Path, help="dataset root, the folder that holds train/")
        parser.add_argument("--per-class", type=int, default=40, help="images per class (default 40)")
        parser.add_argument("--max-side", type=int, default=160, help="longest side in pixels (default 160)")
        parser.add_argument("--quality", type=int, default=85, help="JPEG quality (default 85)")
        parser.add_argument("--output", type=Path, help="output folder (default: shop/demo_catalogue)")

    def handle(self, *args, source_dir: Path, output: Path | None, **options) -> None:
        output = output or Path(apps.get_app_config("shop").path) / "demo_catalogue"
        try:
            report = build_demo_catalogue(
                source_dir,
                output,
                per_class=options["per_class"],
                max_side=options["max_side"],
                quality=options["quality"],
                progress=None if options["verbosity"] > 0 else False,
            )
        except DemoCatalogueError as exc:
            raise CommandError(str(exc)) from exc
        counts = ", ".join(f"{name} {count}" for name, count in report.images_per_class.items())
        self.stdout.write(
            self.style.SUCCESS(f"Wrote {sum(report.images_per_class.values())} images")
            + f" ({report.image_bytes / 1e6:.1f} MB) to {output}: {counts}."
        )
        if report.removed:
            self.stdout.write(f"Removed {len(report.removed)} images no longer selected.")
