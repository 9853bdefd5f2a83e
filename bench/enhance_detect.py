"""Enhance "auto": how often it finds what a photo needs, and how often it finds a need in a clean photo.

    .venv/bin/python bench/enhance_detect.py --data ../shared/data/clothing-dataset-small

Photos at the size the dataset has them (a shop uploads its files, not thumbnails), cropped to multiples of 4.
Each of the benchmark's named degradations (mlcore.restoration.degrade.NAMED, seeded per photo) except the
enlargements, which auto never chooses, is applied to every photo; ``mlcore.restoration.detect.needed`` must
name the degradation's task. Clean photos must get no task.

``--calibrate``: on the train split, per measurement, the threshold that maximises balanced accuracy (the
task's degraded photos against the clean photos and every other degradation) among those that flag at most
MAX_CLEAN_FLAGGED of the clean photos (a shop pressing "auto" on a good photo should mostly be told it needs
nothing); prints them. The thresholds in
``detect.THRESHOLDS`` were set so; the rates reported are on the test split (never calibrated on).

Results: <out>/<date>-enhance-detect.json and .md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DATA, list_classes, log, machine, photo_paths, start_run, write_results  # noqa: E402

import mlcore  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torchvision.transforms.functional import pil_to_tensor, to_pil_image  # noqa: E402

from mlcore.data import load_image  # noqa: E402
from mlcore.restoration import detect  # noqa: E402
from mlcore.restoration.degrade import NAMED, to_float, to_uint8  # noqa: E402

SEED = 0
# Which task each degradation calls for, and which measurement says so.
EXPECTED = {"noise15": "denoise", "noise25": "denoise", "blur": "deblur", "jpeg20": "jpeg",
            "underexposed": "exposure", "overexposed": "exposure", "colourcast": "colour"}
MEASURE = {"noise15": "denoise", "noise25": "denoise", "blur": "deblur", "jpeg20": "jpeg",
           "underexposed": "underexposed", "overexposed": "overexposed", "colourcast": "colour"}
CLEAN = "clean"
MAX_CLEAN_FLAGGED = 0.05


def photo(path: Path) -> Image.Image:
    image = load_image(path)
    return image.crop((0, 0, image.width - image.width % 4, image.height - image.height % 4))


def variants(image: Image.Image, index: int) -> dict[str, Image.Image]:
    x = to_float(pil_to_tensor(image))
    out = {CLEAN: image}
    for k, name in enumerate(EXPECTED):
        generator = torch.Generator().manual_seed(SEED + 100_000 * k + index)
        out[name] = to_pil_image(to_uint8(NAMED[name].apply(x, generator)))
    return out


def measure(paths: list[Path]) -> list[dict[str, dict]]:
    rows = []
    for i, path in enumerate(paths):
        rows.append({name: detect.needed(v) for name, v in variants(photo(path), i).items()})
        if (i + 1) % 50 == 0:
            log(f"  {i + 1} / {len(paths)} photos")
    return rows


def calibrate(rows) -> dict[str, float]:
    best = {}
    for key in detect.THRESHOLDS:
        positives = [r[d][1][key] for r in rows for d in EXPECTED if MEASURE[d] == key]
        negatives = [r[d][1][key] for r in rows for d in [CLEAN, *EXPECTED] if d == CLEAN or MEASURE[d] != key]
        clean = np.array([r[CLEAN][1][key] for r in rows])
        candidates = sorted(set(np.quantile(positives + negatives, np.linspace(0.01, 0.99, 197)).round(4)))
        candidates = [t for t in candidates if np.mean(clean > t) <= MAX_CLEAN_FLAGGED]
        score = lambda t: (np.mean(np.array(positives) > t) + np.mean(np.array(negatives) <= t)) / 2  # noqa: E731
        best[key] = float(max(candidates, key=score))
        log(f"{key}: threshold {best[key]} (balanced accuracy {score(best[key]):.3f})")
    return best


def rates(rows) -> dict[str, Any]:
    out = {}
    for name in [CLEAN, *EXPECTED]:
        found = [r[name][0] for r in rows]
        expected = EXPECTED.get(name)
        out[name] = {
            "photos": len(found),
            "expected_task": expected,
            "found_expected": None if expected is None else round(float(np.mean([expected in f for f in found])), 4),
            "found_only_expected": round(float(np.mean([f == ([expected] if expected else []) for f in found])), 4),
            "other_tasks_per_photo": round(float(np.mean([len([t for t in f if t != expected]) for f in found])), 4),
            "found": {task: int(sum(task in f for f in found)) for task in ("exposure", "colour", "denoise", "jpeg", "deblur")},
        }
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# Enhance auto: detection on the test split, {result['date']}", "",
             f"{result['photos']} test photos at the dataset's own size; each degraded copy must get its task, the "
             "clean photo none. Thresholds (mlcore.restoration.detect.THRESHOLDS): "
             + ", ".join(f"{k} > {v}" for k, v in result["thresholds"].items()) + ".", "",
             "| photo | task expected | found it | found only it | other tasks per photo |",
             "| --- | --- | --- | --- | --- |"]
    for name, r in result["rates"].items():
        found = "n/a" if r["found_expected"] is None else f"{r['found_expected']:.1%}"
        lines.append(f"| {name} | {r['expected_task'] or 'none'} | {found} | {r['found_only_expected']:.1%} | "
                     f"{r['other_tasks_per_photo']:.2f} |")
    clean = result["rates"][CLEAN]
    lines += ["", "False positives on clean photos, per task: " + ", ".join(f"{k} {v}" for k, v in clean["found"].items())
              + f" of {clean['photos']}.", "",
              f"Machine: {result['machine']['platform']}, torch {result['machine']['torch']}.", "",
              f"Command: `{result['command']}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--per-class", type=int, default=None, help="test photos per class (default all)")
    parser.add_argument("--calibrate", action="store_true", help="print thresholds fitted on the train split")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tag")
    args = parser.parse_args(argv)
    today, stem, command = start_run(args, "enhance_detect", argv)
    classes = list_classes(args.data / "train", None)
    if args.calibrate:
        calibrate(measure(photo_paths(args.data / "train", classes, args.per_class)))
        return {}
    paths = photo_paths(args.data / "test", classes, args.per_class)
    log(f"measuring {len(paths)} test photos and {len(EXPECTED)} degraded copies of each")
    result = {"date": today, "command": command, "machine": machine(args.threads), "photos": len(paths),
              "thresholds": dict(detect.THRESHOLDS), "rates": rates(measure(paths))}
    write_results(args.out, stem.replace("enhance_detect", "enhance-detect"), result, markdown(result))
    return result


if __name__ == "__main__":
    main()
