"""Brand look: map held-out photos to the look of a few reference photos; ours against classical colour transfer.

One run on one machine (about --minutes of training plus ~2 minutes of measuring on 2 cores):

    .venv/bin/python bench/brandlook.py --minutes 6 --threads 2 --data ../shared/data/clothing-dataset-small

Smoke run (every code path in well under a minute): ``.venv/bin/python bench/brandlook.py --quick --out /tmp/b``.

Training: the brand-look model (mlcore.brandlook) trains on the TRAIN split only, for --minutes of wall clock
from seed 0 with torch.set_num_threads(--threads), self-supervised (mlcore/brandlook/objective.py, with the one mlcore.training.Trainer); it is then
saved and loaded back as the app would (BrandLook.from_checkpoint).

The look: --references photos of the TEST split (never trained on), chosen at random with the seed, given the
fixed BRAND_GRADE below at full resolution: a warm, faded "film" grade defined in CIELAB (black lifted to
L* 20, white pulled to L* 90, chroma x 0.7, a warm cast that grows towards the highlights). No training grade
works in CIELAB; training saw grades of the same family (fade, casts, per-channel curves, desaturation) but
not this one. --photos other test photos (the same random order) are mapped to the references' look.

Per photo and method: D = the colour-statistics distance to the look (mlcore/brandlook/distance.py: the sum of
the 1-D Wasserstein-1 distances of the L*, a*, b* marginals, CIELAB units) before and after; edge SSIM of the
result to the original (mlcore/brandlook/edges.py: SSIM of Sobel |grad L*|); and, since the bench knows what
the brand grade would have done to this very photo, the mean CIE76 delta E of the result to BRAND_GRADE(photo)
("grade error"): D alone rewards a method that also copies the references' product colours (a blue dress
made as beige as the references' coats), which a shop does not want. "Brand grade (oracle)" is that graded
photo itself: the D a perfect, product-colour-keeping mapping reaches (content differs from the references).

Methods: ours (the learned adaptive LUT), Reinhard et al. 2001 (mean/std transfer in CIELAB) and per-channel
histogram matching in CIELAB (mlcore/brandlook/classical.py). Speed: seconds per megapixel of a test photo
enlarged to --speed-megapixels MP (bicubic), median of --speed-repeats timed runs after one warm-up, on
--threads threads; ours includes computing the photo's own look and the network, like the app.

Target: mean D after <= half the mean D before, with mean edge SSIM >= 0.9. Results:
<out>/<date>-brandlook.json and .md, and two PNG sheets (the graded references; the first photos by method).
``--markdown-from RESULT.json`` rewrites the .md of an earlier run from its JSON without running anything.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DATA, IMAGE_SUFFIXES, fill_defaults, log, start_run, write_results  # noqa: E402

import mlcore  # noqa: E402  (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mlcore.brandlook.classical import histogram_match, reinhard  # noqa: E402
from mlcore.cielab import lab_to_srgb, srgb_to_lab  # noqa: E402
from mlcore.brandlook.config import BrandLookConfig  # noqa: E402
from mlcore.brandlook.distance import image_distance  # noqa: E402
from mlcore.brandlook.edges import edge_ssim  # noqa: E402
from mlcore.brandlook.images import map_colours, rgb_tensor  # noqa: E402
from mlcore.brandlook.look import STATS_SIDE, look_of  # noqa: E402
from mlcore.brandlook.sampler import BrandLook  # noqa: E402
from mlcore.training.trainer import Trainer  # noqa: E402
from mlcore.data import load_image  # noqa: E402

SEED = 0
BATCH = 16
TARGET_REDUCTION = 0.5
TARGET_EDGE_SSIM = 0.9
QUICK = {"minutes": 0.05, "references": 2, "photos": 4, "speed_megapixels": 0.25, "speed_repeats": 1}
FULL = {"minutes": 6.0, "references": 5, "photos": 100, "speed_megapixels": 1.0, "speed_repeats": 5}
ORACLE = "brand grade (oracle)"
UNCHANGED = "unchanged (no mapping)"
SHEET_PHOTOS = 4
SHEET_WIDTH = 150

# The brand's grade, in CIELAB: L* 0..100 -> BLACK..WHITE (faded), chroma scaled, then a warm cast of
# a* + A0 + A1 t, b* + B0 + B1 t with t = L*/100 (warmer highlights: a split tone).
BRAND_GRADE = {"black": 20.0, "white": 90.0, "chroma": 0.7, "a0": 4.0, "a1": 6.0, "b0": 10.0, "b1": 16.0}





def brand_grade_rgb(rgb: torch.Tensor) -> torch.Tensor:
    """BRAND_GRADE of sRGB floats 3 x H x W in [0, 1]."""
    g = BRAND_GRADE
    lab = srgb_to_lab(rgb)
    lightness = g["black"] + (g["white"] - g["black"]) * lab[0] / 100.0
    t = lightness / 100.0
    a = lab[1] * g["chroma"] + g["a0"] + g["a1"] * t
    b = lab[2] * g["chroma"] + g["b0"] + g["b1"] * t
    return lab_to_srgb(torch.stack((lightness, a, b)))


def brand_grade(image: Image.Image) -> Image.Image:
    return map_colours(image, brand_grade_rgb)


def photos_in(split_dir: Path) -> list[Path]:
    paths = sorted(p for p in split_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise SystemExit(f"no photos under {split_dir}")
    return paths


def training_tensor(paths: list[Path], side: int) -> torch.Tensor:
    """uint8 N x 3 x side x side: each photo box-resampled to the square (as ``look.stats_pixels`` does)."""
    images = []
    for path in paths:
        small = load_image(path).resize((side, side), Image.Resampling.BOX)
        images.append(torch.frombuffer(bytearray(small.tobytes()), dtype=torch.uint8).view(side, side, 3).permute(2, 0, 1))
    return torch.stack(images)


def train(args, config: BrandLookConfig | None = None, **hyperparameters: Any) -> tuple[BrandLook, dict[str, Any]]:
    config = config or BrandLookConfig()
    paths = photos_in(args.data / "train")
    images = training_tensor(paths, config.train_size)
    log(f"decoded {len(paths)} training photos at {config.train_size} px")
    trainer = Trainer(config, images, batch_size=BATCH, seed=SEED, **hyperparameters)
    cpu0 = time.process_time()

    def progress(step: int, _total: int, losses: dict[str, float]) -> None:
        if step % 200 == 0:
            log(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()))

    summary = trainer.fit(10**9, max_seconds=args.minutes * 60.0, callback=progress, log_every=20)
    cpu = time.process_time() - cpu0
    buffer = io.BytesIO()
    trainer.save(buffer)
    if args.checkpoint:
        args.checkpoint.write_bytes(buffer.getvalue())
    model = BrandLook.from_checkpoint(io.BytesIO(buffer.getvalue()))
    history = trainer.history
    training = {
        "photos": len(paths), "steps": summary["steps_done"], "seconds": summary["seconds"],
        "stopped": summary["stopped"], "batch_size": BATCH, "seed": SEED,
        "cores_busy": cpu / summary["seconds"] if summary["seconds"] else None,
        "loss_first": {k: history[k][0] for k in history if k != "step" and history[k]},
        "loss_last": summary["losses"], "checkpoint_bytes": len(buffer.getvalue()), "config": config.to_dict(),
    }
    log(f"trained {summary['steps_done']} steps in {summary['seconds']:.0f} s ({summary['stopped']})")
    return model, training


def delta_e(x: Image.Image, y: Image.Image) -> float:
    """Mean CIE76 delta E between two RGB photos of one size."""
    lab_x = srgb_to_lab(rgb_tensor(x.convert("RGB")).double())
    lab_y = srgb_to_lab(rgb_tensor(y.convert("RGB")).double())
    return float((lab_x - lab_y).pow(2).sum(0).sqrt().mean())


def seconds_per_megapixel(method: Callable[[Image.Image], Image.Image], photo: Image.Image, repeats: int) -> float:
    method(photo)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        method(photo)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / (photo.width * photo.height / 1e6)


def summarise(rows: list[dict[str, float]]) -> dict[str, Any]:
    before = [r["before"] for r in rows]
    after = [r["after"] for r in rows]
    ssims = [r["edge_ssim"] for r in rows]
    reductions = [1.0 - a / b for a, b in zip(after, before)]
    return {
        "distance_before_mean": statistics.mean(before),
        "distance_after_mean": statistics.mean(after),
        "reduction_of_mean": 1.0 - statistics.mean(after) / statistics.mean(before),
        "reduction_median": statistics.median(reductions),
        "share_halved": sum(r >= TARGET_REDUCTION for r in reductions) / len(rows),
        "share_halved_with_ssim": sum(
            r >= TARGET_REDUCTION and s >= TARGET_EDGE_SSIM for r, s in zip(reductions, ssims)
        ) / len(rows),
        "edge_ssim_mean": statistics.mean(ssims),
        "edge_ssim_min": min(ssims),
        "delta_e_to_grade_mean": statistics.mean(r["delta_e"] for r in rows),
    }


def contact_sheet(rows: list[list[Image.Image]], width: int = SHEET_WIDTH) -> Image.Image:
    """One row per photo, one column per image, each fitted into width x 4/3 width."""
    height = width * 4 // 3
    sheet = Image.new("RGB", (width * len(rows[0]), height * len(rows)), "white")
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            small = image.convert("RGB")
            small.thumbnail((width, height), Image.Resampling.LANCZOS)
            sheet.paste(small, (j * width, i * height))
    return sheet


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "mlcore": mlcore.__version__,
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "gpu": "none lent" if not torch.cuda.is_available() else torch.cuda.get_device_name(0),
        # Other people's jobs share these cores: the load says how much the timings were perturbed.
        "load_average_1min_at_end": os.getloadavg()[0],
    }


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    s, t, m = result["settings"], result["training"], result["machine"]
    lines = [
        f"# Brand look: {s['photos']} held-out photos mapped to the look of {s['references']} graded references ({result['date']})",
        "",
        "| method | D before | D after | reduction (of the mean) | share halved | edge SSIM mean | edge SSIM min "
        "| delta E to the brand grade | s per MP |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in result["methods"].items():
        lines.append(
            f"| {name} | {fmt(r['distance_before_mean'])} | {fmt(r['distance_after_mean'])} "
            f"| {fmt(100 * r['reduction_of_mean'], 0)} % | {fmt(100 * r['share_halved'], 0)} % "
            f"| {fmt(r['edge_ssim_mean'], 3)} | {fmt(r['edge_ssim_min'], 3)} | {fmt(r['delta_e_to_grade_mean'])} "
            f"| {fmt(r['seconds_per_megapixel'], 3)} |"
        )
    lines += [
        "",
        f"D: colour-statistics distance to the references' look (sum of the 1-D Wasserstein-1 distances of the L*, "
        f"a*, b* marginals, CIELAB units, on a {s['stats_side']} px box-resampled copy). Reduction: 1 - mean D after / "
        f"mean D before; share halved: photos whose own D fell by at least half. Edge SSIM: SSIM (Gaussian window "
        f"11, sigma 1.5) of the Sobel |grad L*| maps of the original and the result at full resolution. Delta E: mean "
        f"CIE76 distance of the result to what the brand grade does to the same photo (lower = the grade was "
        f"reproduced, product colours kept). The oracle row is that graded photo: the D a perfect mapping reaches.",
        "",
        f"Look: {s['references']} test photos (seed {SEED}) given the brand grade {json.dumps(BRAND_GRADE)} "
        f"(CIELAB: L* -> black + (white - black) L*/100, chroma x chroma, a* += a0 + a1 L*/100, b* += b0 + b1 L*/100). "
        f"Photos: the next {s['photos']} test photos, originals at their full size ({s['mean_megapixels']:.2f} MP on "
        f"average). Training: {t['photos']} train photos, {t['steps']} steps of batch {t['batch_size']} in "
        f"{t['seconds']:.0f} s ({s['minutes']} min budget, seed {SEED}); loss {t['loss_first'].get('loss', 0):.4f} -> "
        f"{t['loss_last'].get('loss', 0):.4f}; checkpoint {t['checkpoint_bytes'] / 1e6:.1f} MB.",
        f"Pictures: `{result['date']}-brandlook-references.png` (the graded references) and "
        f"`{result['date']}-brandlook.png` (the first {SHEET_PHOTOS} photos; columns: original, "
        + ", ".join(n for n in result["methods"] if n != UNCHANGED) + ").",
        f"Speed: median of {s['speed_repeats']} runs on a test photo enlarged to {s['speed_megapixels']} MP, "
        f"{m['threads']} threads.",
        f"Setup: {m['platform']}, {m['usable_cpus']} usable of {m['cpu_count']} CPUs, torch {m['torch']} on the CPU, "
        f"GPU: {m['gpu']}; CPU seconds per wall second while training: {fmt(t['cores_busy'])}; 1-minute load "
        f"average {fmt(m['load_average_1min_at_start'], 1)} at the start, {fmt(m['load_average_1min_at_end'], 1)} "
        "at the end (other people's jobs shared the cores).",
        "",
        "Caveats:",
        "- D is partly what ours was trained to lower: the objective has the same distance as a term "
        f"(stats_weight {t['config']['stats_weight']}, on training photos and training grades only). It pulls towards "
        "the references' marginals, product colours included, so some product colours drift towards the "
        "references' (blue jeans turn greyer) and near-white backdrops can gain faint colour blotches (see the "
        "sheet); edge SSIM, being on L* only, does not see chroma. Without that term (stats_weight 0, a 3-minute "
        "development run on 30 of these photos) D fell by 48 % with delta E 7.6 to the brand grade.",
        "- The brand grade is deliberately strong. With a first, milder one (black 14, white 92, chroma 0.75, "
        "b* +8..+19) even the oracle cut D by only 43 %: different products' colours alone keep D high, so halving "
        "D needs either a distinctive look or copying the references' products. The grade was strengthened "
        "(judged by the oracle row alone) before this run.",
        "- Training grades (mlcore/brandlook/grading.py) are of the same family as the brand grade (fade, casts, "
        "per-channel curves, desaturation), not this grade itself (it is defined in CIELAB, none of them is).",
        "- Other people's trainings shared the 2 cores (load above): fewer training steps than an idle machine "
        "gives, and slower timings.",
        "",
        f"Target (mean D down by at least half, mean edge SSIM >= {TARGET_EDGE_SSIM}): ours "
        + ("met" if result["target"]["met"] else "not met")
        + f" (D {fmt(100 * result['target']['reduction'], 0)} % down, edge SSIM {fmt(result['target']['edge_ssim'], 3)}).",
        "",
        f"Command: `{result['command']}`",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA,
                        help="dataset root holding train/ and test/ (default: %(default)s)")
    parser.add_argument("--minutes", type=float, help="wall-clock training budget (default 6)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--references", type=int, help="reference photos forming the look (default 5)")
    parser.add_argument("--photos", type=int, help="test photos mapped to the look (default 100)")
    parser.add_argument("--speed-megapixels", type=float, help="size of the speed test photo (default 1)")
    parser.add_argument("--speed-repeats", type=int, help="timed runs per method (default 5)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder (default %(default)s)")
    parser.add_argument("--checkpoint", type=Path, help="also write the trained checkpoint here")
    parser.add_argument("--markdown-from", type=Path, help="only rewrite the .md next to this result JSON")
    parser.add_argument("--quick", action="store_true", help="smoke run: seconds of training, a few photos")
    args = parser.parse_args(argv)
    fill_defaults(args, QUICK, FULL)
    if args.minutes <= 0 or args.references < 1 or args.photos < 1 or args.threads < 1 or args.speed_repeats < 1:
        parser.error("--minutes, --references, --photos, --threads and --speed-repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.markdown_from:
        result = json.loads(args.markdown_from.read_text())
        args.markdown_from.with_suffix(".md").write_text(markdown(result))
        return result
    today, stem, command = start_run(args, "brandlook", argv)
    log(f"{args.minutes} min of training on {args.threads} threads")
    load_at_start = os.getloadavg()[0]

    model, training = train(args)

    test = photos_in(args.data / "test")
    random.Random(SEED).shuffle(test)
    if len(test) < args.references + args.photos:
        raise SystemExit(f"{args.data / 'test'} has {len(test)} photos, fewer than {args.references} + {args.photos}")
    reference_paths = test[: args.references]
    photo_paths = test[args.references : args.references + args.photos]
    look = look_of([brand_grade(load_image(p)) for p in reference_paths])

    methods: dict[str, Callable[[Image.Image], Image.Image]] = {
        "ours (adaptive LUT)": lambda image: model.apply(image, look),
        "Reinhard (CIELAB mean/std)": lambda image: reinhard(image, look),
        "histogram matching (CIELAB)": lambda image: histogram_match(image, look),
        ORACLE: brand_grade,
        UNCHANGED: lambda image: image,
    }
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
    megapixels = []
    sheet_rows = []
    for index, path in enumerate(photo_paths):
        photo = load_image(path)
        megapixels.append(photo.width * photo.height / 1e6)
        graded = brand_grade(photo)
        before = image_distance(photo, look)
        sheet_row = [photo]
        for name, method in methods.items():
            result = graded if name == ORACLE else method(photo)
            if name != UNCHANGED:
                sheet_row.append(result)
            rows[name].append({
                "photo": str(path.relative_to(args.data)),
                "before": before,
                "after": image_distance(result, look),
                "edge_ssim": edge_ssim(photo, result),
                "delta_e": delta_e(result, graded),
            })
        if index < SHEET_PHOTOS:
            sheet_rows.append(sheet_row)
        if (index + 1) % 20 == 0:
            log(f"measured {index + 1}/{len(photo_paths)} photos")

    side = math.sqrt(args.speed_megapixels * 1e6 / (3 * 4))
    speed_photo = load_image(photo_paths[0]).resize((round(3 * side), round(4 * side)), Image.Resampling.BICUBIC)
    summaries = {}
    for name, method in methods.items():
        summaries[name] = summarise(rows[name]) | {
            "seconds_per_megapixel": seconds_per_megapixel(method, speed_photo, args.speed_repeats),
        }
        log(f"{name}: {json.dumps({k: round(v, 3) for k, v in summaries[name].items()})}")

    ours = summaries["ours (adaptive LUT)"]
    result = {
        "date": today,
        "command": command,
        "machine": machine() | {"load_average_1min_at_start": load_at_start},
        "settings": {
            "minutes": args.minutes, "threads": args.threads, "references": args.references, "photos": args.photos,
            "seed": SEED, "quick": args.quick, "speed_megapixels": speed_photo.width * speed_photo.height / 1e6,
            "speed_repeats": args.speed_repeats, "mean_megapixels": statistics.mean(megapixels),
            "stats_side": STATS_SIDE,
            "brand_grade": BRAND_GRADE, "data": str(args.data),
        },
        "training": training,
        "references": [str(p.relative_to(args.data)) for p in reference_paths],
        "look": look,
        "methods": summaries,
        "target": {
            "reduction": ours["reduction_of_mean"], "edge_ssim": ours["edge_ssim_mean"],
            "met": bool(ours["reduction_of_mean"] >= TARGET_REDUCTION and ours["edge_ssim_mean"] >= TARGET_EDGE_SSIM),
        },
        "per_photo": rows,
    }
    contact_sheet([[brand_grade(load_image(p)) for p in reference_paths]]).save(args.out / f"{stem}-references.png")
    contact_sheet(sheet_rows).save(args.out / f"{stem}.png")
    write_results(args.out, stem, result, markdown(result))
    return result


if __name__ == "__main__":
    main()
