"""Record what `make demo` made: its measured quality, its sample grid and a sheet of the product images.

Run in the folder where `make demo` ran (it reads that demo's SQLite database and media), e.g. after a timed
run from a fresh clone:

    start=$(date +%s); make demo; .venv/bin/python bench/demo_record.py --seconds $(( $(date +%s) - start ))

Writes bench/results/<date>-demo.{md,json}, <date>-demo-sample-grid.png (the generator's grid: one row per
category, each column a training product's own description) and <date>-demo-images.png (every generated
image, one row of four per product). It fails when the demo left no active generator or no image.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import log, machine, write_results  # noqa: E402

# Generated images drawn per row of the sheet (the demo makes four per product).
PER_ROW = 16


def image_sheet(paths: list[Path], target: Path) -> None:
    from PIL import Image

    tiles = [Image.open(path).convert("RGB") for path in paths]
    side = tiles[0].width + 2
    rows = (len(tiles) + PER_ROW - 1) // PER_ROW
    sheet = Image.new("RGB", (PER_ROW * side, rows * side), "white")
    for index, tile in enumerate(tiles):
        sheet.paste(tile, ((index % PER_ROW) * side, (index // PER_ROW) * side))
    sheet.save(target)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, required=True, help="wall-clock seconds `make demo` took")
    parser.add_argument("--demo-dir", type=Path, default=Path("var/demo"), help="where train_imagegen --out wrote")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    import datetime

    import django

    django.setup()
    from imagegen.models import GeneratedImage, ModelVersion
    from imagegen.services.model_registry import SERVING_ORDER

    version = ModelVersion.objects.filter(is_active=True).exclude(kind="features").order_by(*SERVING_ORDER).first()
    images = list(GeneratedImage.objects.filter(kind=GeneratedImage.Kind.GENERATED).order_by("product_id", "seed"))
    if version is None or not images:
        raise SystemExit("the demo left no active generator or no generated image: nothing to record")
    today = datetime.date.today().isoformat()
    stem = f"{today}-demo"
    args.out.mkdir(parents=True, exist_ok=True)
    grid, sheet = args.out / f"{stem}-sample-grid.png", args.out / f"{stem}-images.png"
    shutil.copyfile(args.demo_dir / "sample_grid.png", grid)
    image_sheet([Path(image.image.path) for image in images], sheet)
    evaluation = version.metrics["evaluation"]
    overall, copies = evaluation["overall"], evaluation["near_copies"]
    result = {
        "date": today,
        "machine": machine(threads=2),
        "make_demo_seconds": args.seconds,
        "version": str(version),
        "steps": version.metrics["steps"],
        "training_seconds": version.metrics["seconds"],
        "batch_size": version.metrics["batch_size"],
        "images_per_second": version.metrics["images_per_second"],
        "trained_on": version.image_count,
        "held_out": version.metrics.get("held_out_photos"),
        "measured_on": evaluation.get("real_dir"),
        "overall": overall,
        "near_copies": {k: v for k, v in copies.items() if k not in ("samples", "flagged_indices")},
        "activation": version.metrics.get("activation"),
        "generated_images": len(images),
        "rejected_images": sum(image.review_state == GeneratedImage.ReviewState.REJECTED for image in images),
        "pictures": [str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path) for path in (grid, sheet)],
    }
    table = "\n".join([
        f"# `make demo` from a fresh clone ({today}, 2 CPU cores, no GPU)",
        "",
        f"`make demo` took {args.seconds} s ({args.seconds / 60:.1f} min) from `git clone`, package installation included.",
        f"Generator {version}: {result['steps']} steps at batch {result['batch_size']} in {result['training_seconds']} s "
        f"({result['images_per_second']} images/s) on {result['trained_on']} photos, {result['held_out']} held out.",
        "",
        "| measured on | real | samples | classifier-FID | KID | precision | recall | density | coverage |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| {result['measured_on']} | {overall['count_real']} | {overall['count_fake']} | {overall['fid']:.2f} | "
        f"{overall['kid_mean']:.4f} | {overall['precision']:.2f} | {overall['recall']:.2f} | {overall['density']:.2f} | "
        f"{overall['coverage']:.2f} |",
        "",
        f"Near copies: {copies['generated_flagged']} of {copies['generated_total']} samples flagged, "
        f"{copies['held_out_flagged']} of {copies['held_out_total']} held-out photos ({copies['test']}, p = {copies['p_value']:.2g}); "
        f"{result['rejected_images']} of {result['generated_images']} product images attached as rejected.",
        f"Activation: {result['activation']}",
        "",
        f"Pictures: `{result['pictures'][0]}` (the generator's grid: a row per category, each column a training "
        f"product's own category, attributes and text) and `{result['pictures'][1]}` (the {len(images)} images "
        "generated for 40 products, four per product, in product order).",
        "",
    ])
    write_results(args.out, stem, result, table)
    log("recorded the demo")
    return result


if __name__ == "__main__":
    main()
