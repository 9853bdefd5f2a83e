"""Automatic speck detection (``mlcore.background.specks``): on which photos it dares to judge, what it
marks on photos as they are, and how many planted specks it finds.

On the test split (photos at most --long-side pixels), for every photo:
- judged: the border model is confident and the backdrop is not textured (else the photo is refused);
- on the judged photos as they are: specks found, and marked pixels as a share of the photo (these may be
  real dust; a page of them is written for looking at);
- planted: --plant dark or light discs (radius 1.5 to 4 px, contrast 40 to 120 levels) at random backdrop
  spots at least the product margin away from the product; a planted speck counts as found when the mask
  covers its centre. False marks: marked pixels on the product (the border model's mask), which must be 0.

    .venv/bin/python bench/specks.py [--per-class 40] [--plant 5]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DATA, list_classes, log, machine, photo_paths, write_results  # noqa: E402
from mlcore.background import morphology  # noqa: E402
from mlcore.background.classical import border_matte  # noqa: E402
from mlcore.background.specks import PRODUCT_MARGIN, find_backdrop_specks  # noqa: E402

SEED = 0


def shrink(path: Path, long_side: int) -> Image.Image:
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return image


def plant(image: Image.Image, count: int, gen: torch.Generator) -> tuple[Image.Image, list[tuple[int, int]]]:
    """``image`` with ``count`` specks on its backdrop, and their centres."""
    matte = border_matte(image)
    height, width = matte.alpha.shape
    margin = round(PRODUCT_MARGIN * min(height, width)) + 6
    allowed = ~morphology.dilate(matte.alpha > 0, margin)
    allowed[:8], allowed[-8:], allowed[:, :8], allowed[:, -8:] = False, False, False, False
    spots = torch.nonzero(allowed)
    planted = image.copy()
    draw = ImageDraw.Draw(planted)
    centres = []
    for _ in range(count):
        y, x = (int(v) for v in spots[int(torch.randint(len(spots), (), generator=gen))])
        radius = 1.5 + 2.5 * float(torch.rand((), generator=gen))
        contrast = int(40 + 80 * float(torch.rand((), generator=gen)))
        base = image.getpixel((x, y))
        sign = -1 if sum(base) > 3 * 128 else 1
        colour = tuple(max(0, min(255, v + sign * contrast)) for v in base)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour)
        centres.append((y, x))
    return planted, centres


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--per-class", type=int, default=40)
    parser.add_argument("--classes", type=int, default=None)
    parser.add_argument("--plant", type=int, default=5)
    parser.add_argument("--long-side", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--stem", default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    split = args.data / "test"
    paths = photo_paths(split, list_classes(split, args.classes), args.per_class)
    judged = refused_matte = refused_texture = 0
    found_as_is, marked_share, planted_total, planted_found, false_product = [], [], 0, 0, 0
    for path in paths:
        image = shrink(path, args.long_side)
        specks = find_backdrop_specks(image)
        if specks.mask is None:
            refused_matte += specks.reason.startswith("not a plain")
            refused_texture += not specks.reason.startswith("not a plain")
            continue
        judged += 1
        found_as_is.append(specks.count)
        marked_share.append(float(specks.mask.float().mean()))
        planted, centres = plant(image, args.plant, gen)
        after = find_backdrop_specks(planted)
        if after.mask is None:
            continue
        planted_total += len(centres)
        planted_found += sum(bool(after.mask[y, x]) for y, x in centres)
        false_product += int((after.mask & (border_matte(image).alpha > 0)).sum())
    result = {
        "machine": machine(torch.get_num_threads()),
        "photos": len(paths),
        "judged": judged,
        "refused_not_plain": refused_matte,
        "refused_textured": refused_texture,
        "as_is": {
            "photos_with_specks": sum(1 for c in found_as_is if c),
            "mean_specks": round(sum(found_as_is) / max(1, len(found_as_is)), 2),
            "mean_marked_share": round(sum(marked_share) / max(1, len(marked_share)), 5),
        },
        "planted": {"specks": planted_total, "found": planted_found,
                    "recall": round(planted_found / max(1, planted_total), 3)},
        "marked_product_pixels": false_product,
        "settings": vars(args) | {"data": str(args.data), "out": str(args.out)},
    }
    table = (
        "| photos | judged | refused (not plain / textured) | judged photos with specks as they are | "
        "planted specks found | marked product pixels |\n| --- | --- | --- | --- | --- | --- |\n"
        f"| {len(paths)} | {judged} | {refused_matte} / {refused_texture} | {result['as_is']['photos_with_specks']} "
        f"(mean {result['as_is']['mean_specks']}, {result['as_is']['mean_marked_share']:.3%} of the pixels) | "
        f"{planted_found} / {planted_total} ({result['planted']['recall']:.1%}) | {false_product} |\n"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    import datetime

    write_results(args.out, args.stem or f"{datetime.date.today()}-specks", result, table)
    log("done")
    return result


if __name__ == "__main__":
    main()
