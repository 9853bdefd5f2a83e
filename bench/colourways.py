"""Colourways: the product recoloured inside its matte (mlcore.colourways.recolour) against a classical hue shift.

    .venv/bin/python bench/colourways.py --data ../shared/data/clothing-dataset-small

1. The first --per-class photos per class of the test split, shrunk to --long-side. The product is cut out as
   the app does without a trained cut-out model (the border-colour matte, softened by ``soft_matte``). The app
   uses it only where it is confident (a plain backdrop); the recolouring is measured on every photo with a
   non-empty matte, and again on the confident ones alone.
2. Each photo is recoloured into --colours target colours drawn (seeded) from the colour names, never the one
   its product already has (``dominant_colour_name``); by ours and by the hue shift (HSV hue set to the
   target's, saturation and value kept, blended by the same matte).
3. Measured inside the matte (alpha 1): ΔE (CIE76) between the product's dominant colour (median L*, a*, b*)
   and the target; SSIM of the luminance structure: SSIM's contrast-structure term (Wang et al.'s 11 x 11
   gaussian window, sigma 1.5, K2 0.03) on L* / 100 between the original and the result, averaged over the
   windows centred in the matte (the luminance term is left out: a colourway changes lightness on purpose);
   and backdrop pixels (alpha 0) changed, which must be none. Medians and means over cases.
   Targets: median ΔE under 10, structure at least 0.95, no backdrop pixel changed.
4. Speed: seconds per megapixel of the recolouring (matte given) and of matte + recolouring, on a photo
   enlarged to 1 MP.

Results: <out>/<date>-colourways.{json,md,png}.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DATA, list_classes, log, machine, photo_paths, start_run, timed, write_results  # noqa: E402

import mlcore  # noqa: E402,F401
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from mlcore.background.classical import border_matte  # noqa: E402
from mlcore.background.images import mask_to_image, prepare  # noqa: E402
from mlcore.cielab import srgb_to_lab  # noqa: E402
from mlcore.colourways import hue_shift, product_colour, recolour  # noqa: E402
from mlcore.conditioning.colour import COLOUR_NAMES, colour_rgb, dominant_colour_name  # noqa: E402
from mlcore.data import load_image  # noqa: E402
from mlcore.restoration.metrics import K2, _window  # noqa: E402
from mlcore.scenes import soft_matte  # noqa: E402

SEED = 0
TARGET_DELTA_E = 10.0
TARGET_STRUCTURE = 0.95
METHODS = {"ours": recolour, "hue shift": hue_shift}


def lab(image: Image.Image) -> torch.Tensor:
    return srgb_to_lab(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 255)


def structure(before: torch.Tensor, after: torch.Tensor, inside: torch.Tensor) -> float:
    """SSIM's contrast-structure term of two 1 x H x W images, over windows centred where ``inside``."""
    x, y = before[None].double(), after[None].double()
    window = _window(1, x)
    mu_x, mu_y = F.conv2d(x, window), F.conv2d(y, window)
    var_x = F.conv2d(x * x, window) - mu_x**2
    var_y = F.conv2d(y * y, window) - mu_y**2
    cov = F.conv2d(x * y, window) - mu_x * mu_y
    cs = (2 * cov + K2**2) / (var_x + var_y + K2**2)
    r = (window.shape[-1] - 1) // 2
    centred = inside[r : inside.shape[0] - r, r : inside.shape[1] - r]
    return float(cs[0, 0][centred].mean())


def cases(paths: list[Path], long_side: int, colours: int) -> tuple[list[dict], int]:
    rng = random.Random(SEED)
    out, refused = [], 0
    for path in paths:
        photo = load_image(path)
        photo.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
        rgb, _ = prepare(photo)
        matte = border_matte(rgb)
        if not matte.confident:
            refused += 1
        if float(matte.alpha.max()) < 0.5:
            continue
        soft = soft_matte(rgb, mask_to_image(matte.alpha))
        own = dominant_colour_name(rgb)
        targets = rng.sample([c for c in COLOUR_NAMES if c != own], colours)
        out += [{"path": path, "photo": rgb, "matte": soft, "own": own, "target": t, "confident": matte.confident}
                for t in targets]
    return out, refused


def measure(case: dict, method) -> dict[str, float]:
    photo, matte = case["photo"], case["matte"]
    result = method(photo, matte, case["target"])
    alpha = torch.from_numpy(np.array(matte)).float() / 255
    target = srgb_to_lab(torch.tensor(colour_rgb(case["target"])).float().view(3, 1, 1) / 255).view(3)
    before, after = lab(photo), lab(result)
    backdrop = np.array(matte) == 0
    return {
        "delta_e": float((product_colour(after, alpha) - target).norm()),
        "structure": structure(before[0:1] / 100, after[0:1] / 100, alpha >= 1.0),
        "backdrop_changed": int((np.array(result)[backdrop] != np.array(photo)[backdrop]).any(axis=-1).sum()),
        "result": result,
    }


def summary(rows: list[dict]) -> dict[str, Any]:
    return {
        "cases": len(rows),
        "delta_e_median": round(statistics.median(r["delta_e"] for r in rows), 2),
        "delta_e_mean": round(statistics.fmean(r["delta_e"] for r in rows), 2),
        "delta_e_p90": round(float(np.quantile([r["delta_e"] for r in rows], 0.9)), 2),
        "structure_median": round(statistics.median(r["structure"] for r in rows), 4),
        "structure_mean": round(statistics.fmean(r["structure"] for r in rows), 4),
        "backdrop_pixels_changed": sum(r["backdrop_changed"] for r in rows),
    }


def picture(rows: dict[str, list[dict]], cases_: list[dict], path: Path, count: int = 6, side: int = 192) -> None:
    """Per case: the photo, ours, the hue shift (one row each), ``count`` cases spread over the run."""
    picks = list(range(0, len(cases_), max(1, len(cases_) // count)))[:count]
    grid = Image.new("RGB", (side * 3, side * len(picks)), "white")
    for row, i in enumerate(picks):
        for col, image in enumerate([cases_[i]["photo"], rows["ours"][i]["result"], rows["hue shift"][i]["result"]]):
            thumb = image.copy()
            thumb.thumbnail((side, side))
            grid.paste(thumb, (col * side, row * side))
    grid.save(path)


def markdown(result: dict[str, Any]) -> str:
    s = result["summary"]
    lines = [f"# Colourways benchmark, {result['date']}", "",
             f"{s['ours']['cases']} recolourings of {result['data']['photos']} test photos (long side "
             f"{result['settings']['long_side']} px); the border matte was confident on "
             f"{result['data']['photos'] - result['data']['refused']} (the app refuses the others without a trained "
             f"cut-out model: rows \"confident\"), {result['settings']['colours']} target "
             "colours each (never the product's own). Inside the matte: ΔE (CIE76) of the product's median colour to "
             "the target; structure = SSIM's contrast-structure term on L*. Targets: median ΔE under "
             f"{TARGET_DELTA_E:g}, structure at least {TARGET_STRUCTURE}, no backdrop pixel changed.", "",
             "| method | cases | ΔE median | ΔE mean | ΔE 90th pct | structure median | structure mean | backdrop pixels changed |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, m in s.items():
        lines.append(f"| {name} | {m['cases']} | {m['delta_e_median']} | {m['delta_e_mean']} | {m['delta_e_p90']} | "
                     f"{m['structure_median']} | {m['structure_mean']} | {m['backdrop_pixels_changed']} |")
    t = result["targets"]
    lines += ["", f"Targets (ours): median ΔE {t['delta_e']}; structure {t['structure']}; backdrop {t['backdrop']}.", "",
              "Per target colour, ours (median ΔE / median structure): "
              + "; ".join(f"{k} {v[0]} / {v[1]}" for k, v in result["per_colour"].items()) + ".", "",
              "Speed, seconds per megapixel (median of 3): "
              + "; ".join(f"{k} {v}" for k, v in result["speed"].items()) + ".", "",
              f"Picture: {result['picture']} (per row: photo, ours, hue shift).", "",
              f"Machine: {result['machine']['platform']}, {result['machine']['usable_cpus']} CPUs, torch "
              f"{result['machine']['torch']}, {result['machine']['threads']} threads.", "",
              f"Command: `{result['command']}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--colours", type=int, default=3)
    parser.add_argument("--long-side", type=int, default=384)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tag")
    args = parser.parse_args(argv)
    today, stem, command = start_run(args, "colourways", argv)
    paths = photo_paths(args.data / "test", list_classes(args.data / "test", None), args.per_class)
    all_cases, refused = cases(paths, args.long_side, args.colours)
    if not all_cases:
        raise SystemExit("no photo could be cut out: nothing measured")
    log(f"{len(all_cases)} recolourings of {len(paths)} photos ({refused} not confidently cut out)")
    rows = {name: [measure(c, method) for c in all_cases] for name, method in METHODS.items()}
    ours = summary(rows["ours"])
    confident = {f"{name} (confident)": [r for r, c in zip(rows[name], all_cases, strict=True) if c["confident"]]
                 for name in METHODS}
    per_colour = {}
    for colour in COLOUR_NAMES:
        picked = [r for r, c in zip(rows["ours"], all_cases) if c["target"] == colour]
        if picked:
            per_colour[colour] = (round(statistics.median(r["delta_e"] for r in picked), 1),
                                  round(statistics.median(r["structure"] for r in picked), 3))
    big = all_cases[0]["photo"].resize((1000, 1000), Image.Resampling.LANCZOS)
    big_matte = all_cases[0]["matte"].resize((1000, 1000), Image.Resampling.BILINEAR)
    big_mask = mask_to_image(border_matte(big).alpha)
    speed = {
        "recolour (matte given)": round(timed(lambda: recolour(big, big_matte, "red"), 3), 3),
        "matte + recolour": round(timed(lambda: recolour(big, soft_matte(big, big_mask), "red"), 3), 3),
        "hue shift (matte given)": round(timed(lambda: hue_shift(big, big_matte, "red"), 3), 3),
    }
    png = args.out / f"{stem}.png"
    picture(rows, all_cases, png)
    result = {
        "date": today, "command": command, "machine": machine(args.threads),
        "settings": {"per_class": args.per_class, "colours": args.colours, "long_side": args.long_side, "seed": SEED},
        "data": {"root": str(args.data), "photos": len(paths), "refused": refused},
        "summary": {name: summary(r) for name, r in {**rows, **confident}.items() if r},
        "targets": {"delta_e": f"{ours['delta_e_median']} ({'met' if ours['delta_e_median'] < TARGET_DELTA_E else 'not met'})",
                    "structure": f"{ours['structure_median']} ({'met' if ours['structure_median'] >= TARGET_STRUCTURE else 'not met'})",
                    "backdrop": f"{ours['backdrop_pixels_changed']} pixels changed ({'met' if ours['backdrop_pixels_changed'] == 0 else 'not met'})"},
        "per_colour": per_colour,
        "speed": speed,
        "picture": png.name,
    }
    write_results(args.out, stem, result, markdown(result))
    return result


if __name__ == "__main__":
    main()
