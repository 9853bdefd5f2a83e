"""Calibrating the near-copy gates on real photos: how often they flag photos that are *not* copies.

Training photos: the train split of the clothing photos; new real photos: the test split, which no model
saw. The feature extractor is the app's (15 epochs on the train split). Measured:

* per image (what attaches a generated image as rejected): the share of test photos flagged by the
  feature check, by the pixel check, by both, and by either (the rule), against the training photos; and the share
  of exact and lightly jittered training photos (shift by 1-2 px, brightness +-5%, JPEG quality 90) it
  catches;
* per version (what refuses to activate a model version): Fisher's exact test, one-sided at alpha 0.01,
  of a version's flagged samples against held-out photos. Its false-refusal rate is measured by drawing,
  many times, a "held-out" set and a "generator's samples" both from the test split (a generator as good as
  new real photos); its power by replacing a share of those samples with jittered training photos.

A picture of the test photos that the rule flags (or, when it flags none, of jittered copies it catches), each beside its nearest training photo, is kept with
the result: a flagged "new" photo that really is the same product photographed again is not a false alarm.
"""
from __future__ import annotations

import argparse
import io
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DATA, fill_defaults, list_classes, log, machine, start_run, write_results  # noqa: E402

import mlcore  # noqa: E402  (sets OMP_WAIT_POLICY before torch loads)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.quality import APP_EXTRACTOR_EPOCHS, CLASSIFIER_BATCH, load_split  # noqa: E402
from mlcore.metrics.copy_gate import CopyReference, rate_test  # noqa: E402
from mlcore.metrics.features import train_feature_extractor  # noqa: E402
from mlcore.plots import save_pair_grid  # noqa: E402

SEED = 0
ALPHA = 0.01
COPY_SHARES = (0.02, 0.05, 0.1, 0.2)
QUICK = {"classes": 3, "train_per_class": 30, "test_per_class": 12, "epochs": 1, "draws": 50, "held_out": 8}
FULL = {"classes": None, "train_per_class": None, "test_per_class": None, "epochs": APP_EXTRACTOR_EPOCHS, "draws": 1000, "held_out": 40}


def jitter(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Lightly edited copies: a shift of 1-2 px, brightness x[0.95, 1.05] and a JPEG re-encode at quality 90."""
    out = []
    for image in images:
        dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=generator))
        dx, dy = dx or 1, dy or 1
        shifted = torch.roll(image, shifts=(dy, dx), dims=(1, 2)).float()
        gain = 0.95 + 0.1 * float(torch.rand(1, generator=generator))
        pixels = shifted.mul(gain).clamp(0, 255).round().to(torch.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=90)
        decoded = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        out.append(torch.from_numpy(np.array(decoded)).permute(2, 0, 1))
    return torch.stack(out)


def untrained_samples(classes: list[str], count: int) -> torch.Tensor:
    """What a generator makes before it has learnt anything (the freshly initialised cgan), uint8: images no
    gate may take for copies, though they sit nowhere in particular among the photos."""
    from mlcore.gan.config import GANConfig
    from mlcore.gan.objective import build_networks

    generator, _ = build_networks(GANConfig(classes=classes, image_size=64), SEED)
    generator.train()  # batch statistics: in eval mode the untouched running statistics give a flat grey
    z = torch.randn(count, generator.config.z_dim, generator=torch.Generator().manual_seed(SEED))
    labels = torch.arange(count) % len(classes)
    with torch.no_grad():
        images = generator(z, labels)
    return images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def rates(verdicts) -> dict[str, float]:
    n = max(len(verdicts), 1)
    return {
        "distance": sum(v.feature_distance <= v.feature_threshold for v in verdicts) / n,
        "ratio": sum(v.ratio <= v.ratio_threshold for v in verdicts) / n,
        "feature": sum(v.by_features for v in verdicts) / n,
        "rule": sum(v.copy for v in verdicts) / n,
        "pixel": sum(v.by_pixels for v in verdicts) / n,
        "both": sum(v.by_features and v.by_pixels for v in verdicts) / n,
        "either": sum(v.by_features or v.by_pixels for v in verdicts) / n,
        "count": len(verdicts),
    }


def gate_draws(test_flags: torch.Tensor, copy_flags: torch.Tensor, args) -> dict[str, Any]:
    """Refusal rates of the version gate over random draws: samples all new photos, then with a share of copies."""
    rng = random.Random(SEED)
    n = len(test_flags)
    samples = n - args.held_out
    out: dict[str, Any] = {"held_out": args.held_out, "samples": samples, "draws": args.draws}
    for share in (0.0, *COPY_SHARES):
        copies = round(samples * share)
        refused = 0
        for _ in range(args.draws):
            order = list(range(n))
            rng.shuffle(order)
            held, drawn = order[: args.held_out], order[args.held_out : args.held_out + samples - copies]
            flagged = int(test_flags[drawn].sum()) + int(copy_flags[rng.sample(range(len(copy_flags)), copies)].sum())
            verdict = rate_test(flagged, samples, int(test_flags[held].sum()), len(held), alpha=ALPHA)
            refused += verdict["significant"]
        out[f"refused_at_{share:g}"] = refused / args.draws
    return out


def pair_picture(path: Path, left: torch.Tensor, right: torch.Tensor, limit: int = 24) -> int:
    """Pairs of (image, its nearest training photo), at most ``limit``; returns how many were drawn."""
    count = min(len(left), limit)
    if count:
        save_pair_grid(left[:count], right[:count], path)
    return count


def markdown(result: dict[str, Any]) -> str:
    per_image, gate = result["per_image"], result["version_gate"]
    labels = {
        "test": "new real photos (test split)", "untrained": "an untrained generator's samples",
        "exact": "exact training photos", "jittered": "jittered training photos",
    }
    rows = [
        f"| {label} | {per_image[key]['count']} | {per_image[key]['distance']:.3f} | {per_image[key]['ratio']:.3f} | "
        f"**{per_image[key]['rule']:.3f}** | {per_image[key]['feature']:.3f} | {per_image[key]['pixel']:.3f} | "
        f"{per_image[key]['either']:.3f} |"
        for key, label in labels.items()
    ]
    shares = " | ".join(f"{gate[f'refused_at_{s:g}']:.3f}" for s in COPY_SHARES)
    return "\n".join([
        f"# Near-copy gates calibrated on real photos ({result['date']})",
        "",
        "Share flagged against the training photos. Distance: nearest training photo closer than its threshold; "
        "ratio: nearest over second-nearest below its threshold. A generated image is rejected when both hold "
        "(the per-image rule); the version test counts samples where either holds (the feature flag) against "
        "the held-out photos. The pixel check is reported beside them.",
        "",
        "| images | count | distance | ratio | both (per-image rule) | either (version test) | pixel check | feature or pixel |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Per version: Fisher's exact test, one-sided, alpha {ALPHA}, of {gate['samples']} samples against "
        f"{gate['held_out']} held-out photos, {gate['draws']} random draws from the test split.",
        "",
        "| samples | new photos only | " + " | ".join(f"{s:.0%} jittered copies" for s in COPY_SHARES) + " |",
        "| --- | --- | " + " | ".join("---" for _ in COPY_SHARES) + " |",
        f"| versions refused | **{gate['refused_at_0']:.3f}** | {shares} |",
        "",
        f"Thresholds (1st percentile of the training photos' own values against the other training photos): feature "
        f"distance {result['thresholds']['feature']:.4f} or nearest/second-nearest ratio {result['thresholds']['ratio']:.4f} "
        f"(the feature check flags either), pixel mean absolute difference {result['thresholds']['pixel']:.4f}. "
        f"Feature extractor {result['extractor']['version_id']} ({result['extractor']['epochs']} epochs, test accuracy "
        f"{result['extractor']['test_accuracy']:.3f}). Data: {result['data']['train']} train / {result['data']['test']} test "
        f"photos of {len(result['data']['classes'])} classes at 64 px.",
        "",
        f"Picture: `{result['picture']}`: {result['picture_shows']}, each (left) beside its nearest training "
        f"photo (right); {result['picture_pairs']} pairs.",
        "",
        f"Command: `{result['command']}`",
        "",
    ])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--classes", type=int)
    parser.add_argument("--train-per-class", type=int)
    parser.add_argument("--test-per-class", type=int)
    parser.add_argument("--epochs", type=int, help=f"feature extractor epochs (default {APP_EXTRACTOR_EPOCHS}, as the app)")
    parser.add_argument("--draws", type=int, help="random draws for the version gate (default 1000)")
    parser.add_argument("--held-out", type=int, help="held-out photos per draw (default 40, the demo's 10%%)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tag")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 classes, few photos")
    return fill_defaults(parser.parse_args(argv), QUICK, FULL)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    today, stem, command = start_run(args, "near_copy", argv)
    classes = list_classes(args.data / "train", args.classes, at_least=2)
    train = load_split(args.data / "train", classes, 64, args.train_per_class, conditions=False)
    test = load_split(args.data / "test", classes, 64, args.test_per_class, conditions=False)
    log(f"decoded {len(train.images)} train and {len(test.images)} test photos")
    extractor = train_feature_extractor(
        train.images, train.labels, classes, image_size=64, epochs=args.epochs, batch_size=CLASSIFIER_BATCH, seed=SEED
    )
    reference = CopyReference.build(extractor, train.images)
    generator = torch.Generator().manual_seed(SEED)
    jittered = jitter(train.images, generator)
    verdicts = {
        "test": reference.check(extractor, test.images),
        "untrained": reference.check(extractor, untrained_samples(classes, len(test.images))),
        "exact": reference.check(extractor, train.images),
        "jittered": reference.check(extractor, jittered),
    }
    per_image = {name: rates(found) for name, found in verdicts.items()}
    log(f"per image: {per_image}")
    test_flags = torch.tensor([v.by_features for v in verdicts["test"]])
    copy_flags = torch.tensor([v.by_features for v in verdicts["jittered"]])
    gate = gate_draws(test_flags, copy_flags, args)
    log(f"version gate: {gate}")
    flagged = [i for i, v in enumerate(verdicts["test"]) if v.copy]
    picture = args.out / f"{stem}.png"
    # First the new photos the rule flags (false alarms unless they show the same item), then a spread of the
    # jittered copies it catches.
    caught = [i for i, v in enumerate(verdicts["jittered"]) if v.copy][:: max(1, len(train.images) // 100)][: 24 - len(flagged[:8])]
    left = torch.cat([test.images[flagged[:8]], jittered[caught]])
    right = train.images[[verdicts["test"][i].nearest for i in flagged[:8]] + [verdicts["jittered"][i].nearest for i in caught]]
    shown = f"the first {len(flagged[:8])} pairs are test photos the rule flags, the rest jittered training photos it catches"
    pairs = pair_picture(picture, left, right)
    result = {
        "date": today,
        "command": command,
        "machine": machine(args.threads),
        "data": {"classes": classes, "train": len(train.images), "test": len(test.images)},
        "extractor": {"version_id": extractor.version_id, "epochs": args.epochs,
                      "test_accuracy": extractor.accuracy(test.images, test.labels)},
        "thresholds": {"feature": reference.feature_threshold, "ratio": reference.ratio_threshold, "pixel": reference.pixel_threshold},
        "per_image": per_image,
        "flagged_test_photos": [
            {"photo": str(test.paths[i].relative_to(args.data)), "nearest": str(train.paths[verdicts["test"][i].nearest].relative_to(args.data)),
             **verdicts["test"][i].to_dict()}
            for i in flagged
        ],
        "version_gate": gate,
        "picture": str(picture.relative_to(ROOT)) if picture.is_relative_to(ROOT) else str(picture),
        "picture_pairs": pairs,
        "picture_shows": shown,
    }
    write_results(args.out, stem, result, markdown(result))
    return result


if __name__ == "__main__":
    main()
