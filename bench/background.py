"""Background removal: mask IoU on composites with known masks, ours against the border model alone and GrabCut.

One run on one machine, about 25 minutes on 2 cores (8 of them training, 4 to 8 GrabCut's):

    .venv/bin/python bench/background.py --minutes 8 --threads 2 --data ../shared/data/clothing-dataset-small

Smoke run (every code path on a tiny dataset, under a minute): ``.venv/bin/python bench/background.py --quick --data DIR --out /tmp/b``.

Data (all from the clothing photos, read from --data):
- train split: every photo the border model (mlcore.background.classical) is confident about gives a cut-out
  (mlcore.background.composites.cutout_from_photo); the corners of all the others give real-backdrop patches.
  The network trains on composites of these, made afresh every step (trainer seed 0), for --minutes.
- test split, never trained on: per class, the first --per-class photos (sorted by file name) the border model is
  confident about are the test products; each is pasted --composites times (seed 1000) on a backdrop (procedural
  textures, gradients, noise, stripes, or a patch of a test photo the border model is not confident about), at a
  random scale, place, tilt and light, on a canvas the size of its own photo, and stored as JPEG (quality 92) as
  an upload would be. The mask it was pasted with, binarised at 0.5, is the ground truth.

Contenders, each asked for a mask of the decoded JPEG composite, binarised at 0.5 (alpha >= 128):
- ours: ``Segmenter`` with method "combined" (the border model where it is confident, else the network);
- network: the network alone (guided-filter refined); classical: the border model alone;
- grabcut: OpenCV's cv2.grabCut initialised with the rectangle GRABCUT_MARGIN pixels inside the image border,
  GRABCUT_ITERATIONS iterations; foreground = GC_FGD or GC_PR_FGD.

Speed: seconds per photo for each contender on --speed-images test composites resized to --speed-megapixels, with
torch and OpenCV limited to --threads threads (the model already loaded; median over the photos).
Results: <out>/<date>-background[-tag].json and .md, and a PNG of the worst and typical cases for ours.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DATA, IMAGE_SUFFIXES, fill_defaults, list_classes, log, machine, start_run  # noqa: E402

import mlcore  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mlcore.background import composites  # noqa: E402
from mlcore.background.classical import border_matte  # noqa: E402
from mlcore.background.config import SegmenterConfig  # noqa: E402
from mlcore.background.objective import mask_iou  # noqa: E402
from mlcore.background.sampler import Segmenter  # noqa: E402
from mlcore.training.trainer import Trainer  # noqa: E402

TRAIN_SEED = 0
TEST_SEED = 1000
TARGET_IOU = 0.9
GRABCUT_MARGIN = 5
GRABCUT_ITERATIONS = 5
JPEG_QUALITY = 92
TEST_BACKDROP_SIDE = 256
CONTENDERS = ("ours", "network", "classical", "grabcut")
QUICK = {
    "classes": 3, "train_per_class": 12, "per_class": 3, "composites": 1, "minutes": 0.05, "speed_images": 1,
    "speed_megapixels": 0.05,
}
# GrabCut takes tens of seconds per megapixel on 2 cores, so 5 photos are timed, not all.
FULL = {
    "classes": None, "train_per_class": None, "per_class": 10, "composites": 2, "minutes": 8.0, "speed_images": 5,
    "speed_megapixels": 1.0,
}





def photos_of(split_dir: Path, classes: list[str], per_class: int | None) -> dict[str, list[Path]]:
    out = {}
    for name in classes:
        files = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        out[name] = files[:per_class] if per_class else files
    return out


def decode(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def scan_train(files: dict[str, list[Path]], image_size: int) -> tuple[composites.TrainingData, dict[str, Any]]:
    """The trainer's data from every train photo (as the app makes it), and how many qualified per class."""
    paths = [path for name in files for path in files[name]]
    data = composites.training_data((decode(path) for path in paths), image_size, sources=[str(p) for p in paths])
    per_class, start = {}, 0
    for name, class_paths in files.items():
        flags = data.confident[start : start + len(class_paths)]
        per_class[name] = {"photos": len(class_paths), "confident": sum(flags)}
        start += len(class_paths)
    return data, {"per_class": per_class, "reasons_not_confident": dict(data.reasons.most_common())}


def scan_test(files: dict[str, list[Path]], per_class: int) -> tuple[list[tuple[str, composites.Cutout, tuple[int, int]]], list[Image.Image], dict[str, Any]]:
    """The first ``per_class`` confident photos of each class as (class, cut-out, photo size); the photos the
    border model is not confident about (their corners are the test backdrops)."""
    chosen, others, counts = [], [], {}
    for name, paths in files.items():
        confident = used = 0
        for path in paths:
            image = decode(path)
            cutout = composites.cutout_from_photo(image, source=str(path))
            if cutout is None:
                others.append(image)
                continue
            confident += 1
            if used < per_class:
                chosen.append((name, cutout, image.size))
                used += 1
        counts[name] = {"photos": len(paths), "confident": confident, "used": used}
    return chosen, others, {"per_class": counts}


def to_pil(image: torch.Tensor) -> Image.Image:
    pixels = image.mul(255).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
    return Image.fromarray(pixels.numpy())


def jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def make_test_set(chosen, backdrops: torch.Tensor, per_photo: int) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(TEST_SEED)
    cases = []
    for name, cutout, (width, height) in chosen:
        for _ in range(per_photo):
            image, alpha = composites.composite(cutout.rgba(), height, width, gen, backdrops)
            cases.append({"class": name, "source": Path(cutout.source).name, "image": jpeg(to_pil(image)), "truth": alpha[0]})
    return cases


def grabcut_mask(image: Image.Image) -> torch.Tensor:
    import cv2

    bgr = cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)
    height, width = bgr.shape[:2]
    mask = np.zeros((height, width), np.uint8)
    rect = (GRABCUT_MARGIN, GRABCUT_MARGIN, width - 2 * GRABCUT_MARGIN, height - 2 * GRABCUT_MARGIN)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(bgr, mask, rect, background, foreground, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    return torch.from_numpy(((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.float32))


def mask_functions(checkpoint: bytes) -> dict[str, Any]:
    ours = Segmenter.from_checkpoint(checkpoint, method="combined")
    network = Segmenter.from_checkpoint(checkpoint, method="network")
    classical = Segmenter.classical()
    return {
        "ours": ours.alpha,
        "network": network.alpha,
        "classical": classical.alpha,
        "grabcut": grabcut_mask,
    }


def summarise(ious: list[float], classes: list[str]) -> dict[str, Any]:
    values = torch.tensor(ious, dtype=torch.float64)
    per_class = {}
    for name in sorted(set(classes)):
        mine = values[[i for i, c in enumerate(classes) if c == name]]
        per_class[name] = round(float(mine.mean()), 4)
    return {
        "mean_iou": round(float(values.mean()), 4),
        "median_iou": round(float(values.median()), 4),
        "share_at_least_0.9": round(float((values >= TARGET_IOU).double().mean()), 4),
        "per_class": per_class,
    }


def evaluate(cases: list[dict[str, Any]], functions: dict[str, Any]) -> dict[str, Any]:
    results = {}
    for name, function in functions.items():
        started = time.perf_counter()
        ious = [mask_iou(function(case["image"]), case["truth"]) for case in cases]
        for case, iou in zip(cases, ious):
            case.setdefault("iou", {})[name] = iou
        results[name] = summarise(ious, [case["class"] for case in cases])
        results[name]["seconds_total"] = round(time.perf_counter() - started, 1)
        log(f"{name}: mean IoU {results[name]['mean_iou']:.4f}, >= 0.9: {results[name]['share_at_least_0.9']:.1%}")
    return results


def at_megapixels(image: Image.Image, megapixels: float) -> Image.Image:
    scale = math.sqrt(megapixels * 1e6 / (image.width * image.height))
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC)


def speed(cases: list[dict[str, Any]], functions: dict[str, Any], count: int, megapixels: float) -> dict[str, Any]:
    photos = [at_megapixels(case["image"], megapixels) for case in cases[:count]]
    out = {}
    for name, function in functions.items():
        function(photos[0])  # warm-up: first-call allocations and OpenMP thread start are not per-photo costs
        seconds = []
        for photo in photos:
            started = time.perf_counter()
            function(photo)
            seconds.append(time.perf_counter() - started)
        out[name] = {
            "median_seconds": round(statistics.median(seconds), 3),
            "mean_seconds": round(statistics.fmean(seconds), 3),
            "photos": len(photos),
            "megapixels": round(photos[0].width * photos[0].height / 1e6, 3),
        }
        log(f"{name}: {out[name]['median_seconds']:.3f} s per {megapixels}-MP photo")
    return out


def example_sheet(path: Path, cases: list[dict[str, Any]], functions: dict[str, Any], count: int = 6) -> None:
    """Worst and median cases of ours: composite | truth | ours | grabcut, 160 px high."""
    from torchvision.utils import save_image

    ranked = sorted(cases, key=lambda case: case["iou"]["ours"])
    picks = ranked[: count // 2] + ranked[len(ranked) // 2 : len(ranked) // 2 + count - count // 2]
    tiles = []
    for case in picks:
        image = torch.from_numpy(np.asarray(case["image"]).copy()).permute(2, 0, 1).float() / 255
        for tile in (image, case["truth"], functions["ours"](case["image"]), functions["grabcut"](case["image"])):
            tile = tile if tile.dim() == 3 else tile[None].expand(3, -1, -1)
            tiles.append(torch.nn.functional.interpolate(tile[None].float(), size=(160, 120), mode="bilinear", antialias=True)[0])
    save_image(torch.stack(tiles), path, nrow=8, padding=2, pad_value=1.0)


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    s, d = result["settings"], result["data"]
    lines = [
        f"# Background removal: mask IoU on test composites ({result['date']})",
        "",
        f"| method | mean IoU | median IoU | share IoU ≥ 0.9 | s per {s['speed_megapixels']:g}-MP photo |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in CONTENDERS:
        r, t = result["iou"][name], result["speed"][name]
        lines.append(
            f"| {name} | {fmt(r['mean_iou'])} | {fmt(r['median_iou'])} | {r['share_at_least_0.9']:.1%} | {fmt(t['median_seconds'], 2)} |"
        )
    classes = sorted(result["iou"]["ours"]["per_class"])
    lines += ["", "Mean IoU per class:", "", "| method | " + " | ".join(classes) + " |", "| --- |" + " --- |" * len(classes)]
    for name in CONTENDERS:
        lines.append(f"| {name} | " + " | ".join(fmt(result["iou"][name]["per_class"][c], 2) for c in classes) + " |")
    ours, grab = result["iou"]["ours"]["mean_iou"], result["iou"]["grabcut"]["mean_iou"]
    verdict = "met" if ours >= TARGET_IOU and ours > grab else "not met"
    m, tr = result["machine"], result["training"]
    lines += [
        "",
        f"Target (mean IoU ≥ {TARGET_IOU} and above GrabCut): **{verdict}** (ours {ours:.3f}, GrabCut {grab:.3f}).",
        "",
        f"Test set: {d['test_composites']} composites of {d['test_products']} products from the test split (up to "
        f"{s['per_class']} per class, the first in file order the border model is confident about; "
        f"{d['test_confident']} of {d['test_photos']} test photos qualify), {s['composites']} per product on backdrops "
        f"drawn with seed {TEST_SEED} (procedural textures, gradients, noise, stripes, dots, and corners of the "
        f"{d['test_backdrop_photos']} test photos it is not confident about), on a canvas the size of the product's own "
        f"photo, saved as JPEG quality {JPEG_QUALITY}. Ground truth: the pasted alpha at 0.5. Masks binarised at 0.5.",
        f"Training: {d['train_cutouts']} cut-outs from {d['train_photos']} train photos "
        f"({d['train_cutouts'] / max(1, d['train_photos']):.0%} qualify) and {d['train_backdrop_patches']} backdrop "
        f"patches; {tr['steps']} steps of batch {tr['batch_size']} at {s['image_size']} px in {tr['seconds']:.0f} s "
        f"(budget {s['minutes']} min, seed {TRAIN_SEED}), final loss {fmt(tr['final_losses'].get('loss'))}.",
        f"Ours = border model where confident ({result['ours_used_classical']} of {d['test_composites']} composites), "
        "network elsewhere. GrabCut: cv2.grabCut, rectangle "
        f"{GRABCUT_MARGIN} px inside the border, {GRABCUT_ITERATIONS} iterations, GC_FGD | GC_PR_FGD.",
        f"Speed: median seconds per photo over {result['speed']['ours']['photos']} test composites resized to "
        f"{result['speed']['ours']['megapixels']} MP, {m['threads']} threads (torch and OpenCV), model loaded.",
        f"Machine: {m['platform']}, {m['usable_cpus']} usable of {m['cpu_count']} CPUs, torch {m['torch']}, "
        f"OpenCV {m['opencv']}, {m['device']}.",
        "",
        f"Command: `{result['command']}`",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA,
                        help="dataset root holding train/ and test/ (default: %(default)s)")
    parser.add_argument("--minutes", type=float, help="wall-clock training budget of the network (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="torch and OpenCV threads (default 2)")
    parser.add_argument("--image-size", type=int, default=SegmenterConfig.image_size)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--per-class", type=int, help="test products per class (default 10)")
    parser.add_argument("--composites", type=int, help="test composites per product (default 2)")
    parser.add_argument("--speed-images", type=int, help="photos timed per method (default 5)")
    parser.add_argument("--speed-megapixels", type=float, help="size of the timed photos (default 1.0)")
    parser.add_argument("--classes", type=int, help="use only the first N classes (default all)")
    parser.add_argument("--train-per-class", type=int, help="at most N train photos per class (default all)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder (default %(default)s)")
    parser.add_argument("--tag", help="appended to the result files' stem")
    parser.add_argument("--save-checkpoint", type=Path, help="also write the trained network's checkpoint here")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 classes, few photos, seconds of training")
    args = parser.parse_args(argv)
    fill_defaults(args, QUICK, FULL)
    if args.minutes <= 0 or args.speed_megapixels <= 0 or min(args.threads, args.per_class, args.composites, args.speed_images, args.batch_size) < 1:
        parser.error("--minutes, --threads, --per-class, --composites, --speed-images and --batch-size must be positive")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import cv2

    today, stem, command = start_run(args, "background", argv)
    classes = list_classes(args.data / "train", args.classes)

    log("train split: border model on every photo")
    train_files = photos_of(args.data / "train", classes, args.train_per_class)
    try:
        data, train_scan = scan_train(train_files, args.image_size)
    except ValueError as exc:
        raise SystemExit(f"nothing to train on: {exc}") from None
    bank, train_backdrops = data.cutouts, data.backdrops
    log(f"{len(bank)} cut-outs of {len(data.confident)} train photos, {len(train_backdrops)} backdrop patches")

    log("test split: border model on every photo")
    test_files = photos_of(args.data / "test", classes, None)
    chosen, test_others, test_scan = scan_test(test_files, args.per_class)
    if not chosen:
        raise SystemExit("the border model is confident about no test photo: no test composites")
    test_backdrops = composites.backdrop_patches(test_others, TEST_BACKDROP_SIDE)
    cases = make_test_set(chosen, test_backdrops, args.composites)
    log(f"{len(cases)} test composites of {len(chosen)} products")

    config = SegmenterConfig(image_size=args.image_size)
    trainer = Trainer(config, bank, train_backdrops, batch_size=args.batch_size, seed=TRAIN_SEED)
    log(f"training for {args.minutes * 60:.0f} s")
    every = max(5.0, args.minutes * 6)
    last = [time.perf_counter()]

    def progress(step: int, _total: int, losses: dict[str, float]) -> None:
        if time.perf_counter() - last[0] >= every:
            last[0] = time.perf_counter()
            log(f"  step {step}: " + " ".join(f"{k} {v:.3f}" for k, v in losses.items()))

    load_before = os.getloadavg()
    summary = trainer.fit(10**9, max_seconds=args.minutes * 60, callback=progress)
    buffer = io.BytesIO()
    trainer.save(buffer)
    checkpoint = buffer.getvalue()
    if args.save_checkpoint:
        args.save_checkpoint.write_bytes(checkpoint)
    log(f"{summary['steps_done']} steps in {summary['seconds']:.0f} s")

    functions = mask_functions(checkpoint)
    iou = evaluate(cases, functions)
    ours_classical = sum(border_matte(case["image"]).confident for case in cases)
    timing = speed(cases, functions, args.speed_images, args.speed_megapixels)
    example_sheet(args.out / f"{stem}.png", cases, functions)

    test_photos = sum(len(v) for v in test_files.values())
    result = {
        "date": today,
        "command": command,
        "machine": machine(args.threads, opencv=cv2.__version__),
        "settings": {
            "minutes": args.minutes, "image_size": args.image_size, "batch_size": args.batch_size,
            "per_class": args.per_class, "composites": args.composites, "classes": classes,
            "speed_images": args.speed_images, "speed_megapixels": args.speed_megapixels, "threads": args.threads,
            "train_seed": TRAIN_SEED, "test_seed": TEST_SEED, "grabcut_margin": GRABCUT_MARGIN,
            "grabcut_iterations": GRABCUT_ITERATIONS, "jpeg_quality": JPEG_QUALITY, "quick": args.quick,
        },
        "data": {
            "train_photos": sum(len(v) for v in train_files.values()),
            "train_cutouts": len(bank),
            "train_backdrop_patches": len(train_backdrops),
            "train_scan": train_scan,
            "test_photos": test_photos,
            "test_confident": sum(v["confident"] for v in test_scan["per_class"].values()),
            "test_products": len(chosen),
            "test_composites": len(cases),
            "test_backdrop_photos": len(test_others),
            "test_scan": test_scan,
        },
        "training": {
            "steps": summary["steps_done"],
            "seconds": round(summary["seconds"], 1),
            "batch_size": args.batch_size,
            "stopped": summary["stopped"],
            "final_losses": {k: round(float(v), 4) for k, v in summary["losses"].items()},
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "iou": iou,
        "ours_used_classical": ours_classical,
        "speed": timing,
        "target": {
            "mean_iou": TARGET_IOU,
            "met": bool(iou["ours"]["mean_iou"] >= TARGET_IOU and iou["ours"]["mean_iou"] > iou["grabcut"]["mean_iou"]),
        },
        "cases": [
            {"class": c["class"], "source": c["source"], "size": list(c["image"].size), "iou": {k: round(v, 4) for k, v in c["iou"].items()}}
            for c in cases
        ],
    }
    json_path = args.out / f"{stem}.json"
    json_path.write_text(json.dumps(result, indent=2) + "\n")
    json_path.with_suffix(".md").write_text(markdown(result))
    log(f"wrote {json_path} and {json_path.with_suffix('.md').name}")
    return result


if __name__ == "__main__":
    main()
