"""Personalized product images (issue 6), as an offline simulation with the app's own code: whether
segment variants match hidden shopper tastes better than the original photos, whether they keep the
product recognisable, and how quickly the A/B bandit finds the better image.

Nothing here is measured on real shoppers: the shoppers, their tastes and their clicks are simulated, so
the numbers say what the pipeline does under the click model below, not what a shop would see.

The app's code used as it runs in the shop:
- taste features (``imagegen.storefront.services.taste.features_of``), segments (the backend's
  ``cluster_tastes``, seeded k-means, as ``taste.refresh_segments`` calls it) and the
  segment's backdrop colour (``taste.backdrop_colour``, given an object with the segment's ``centroid``);
- the variant, made exactly as the storefront's ``services.personalize`` requests it: ``background.clean`` then
  ``background.apply(photo, {"background": colour, "backdrop": "studio", ...}, segmenter)`` with the
  classical segmenter the app uses when no segmentation network is active (``MaskOncePerPhoto``: the
  same masks, each photo cut out once rather than once per segment). A photo the segmenter cannot cut out
  raises, as the edit job would fail: that product has no variant and shoppers see its original;
- event weights and the minimum events a shopper needs for a segment (``taste.EVENT_WEIGHTS``,
  ``IMAGEGEN_SEGMENT_MIN_EVENTS``), the segment count and exploration defaults (``IMAGEGEN_SEGMENTS``,
  ``IMAGEGEN_BANDIT_EXPLORATION``);
- the bandit (``imagegen.storefront.services.bandit.choose``);
- the catalogue classifier (``mlcore.metrics.features.train_feature_extractor``, what
  ``manage.py train_feature_extractor`` trains), trained on the TRAIN split for --classifier-epochs (the
  app's 15 by default; reproducible), fewer if one timed calibration epoch says they would not fit in
  --classifier-seconds (then the epoch count depends on the machine; the JSON says whether it was capped),
  and evaluated on TEST-split photos only.

Simulation (everything drawn from --seed):
- Test-split products (photos shrunk to --long-side) are split per class, alternately, into a browse set
  (the shoppers' history) and a held-out set (scored); the two never overlap.
- Shoppers: --shoppers, each in one of the hidden taste clusters ``TASTE_CLUSTERS`` (round-robin) with a
  preferred backdrop colour = the cluster's CIELAB centre + N(0, --taste-noise) on L, a and b.
- Click model: P(click | shown image) = --base-rate * exp(-dE / --scale), where dE is the CIELAB distance
  (dE76) between the shopper's hidden preferred backdrop and the backdrop part of ``features_of(image)``
  (unscaled back to L, a, b). Product colour does not enter the click model.
- Browsing: each shopper is shown --views browse products (their ORIGINAL photos) and clicks per the click
  model. Their taste is what ``taste.shopper_tastes`` computes from those events: the EVENT_WEIGHTS-weighted
  mean of the features of the images they engaged with (impressions weigh 0, so it is the mean over their
  clicks), computed here directly from ``features_of`` of the clicked photos rather than through the
  database. Shoppers below IMAGEGEN_SEGMENT_MIN_EVENTS of weight get no segment (the original photo), as
  in ``taste.refresh_segments``; the others are grouped by ``kmeans`` into --segments segments.
- Match: for every shopper and held-out product, match = exp(-dE / scale) of (a) the original photo and
  (b) the variant of the shopper's segment (the original where there is none); expected CTR = base rate x
  match. Segment purity: the share of a segment's shoppers from its majority hidden cluster.
- Product identity: the classifier's category for each variant against the true category and against its
  prediction on the original photo of the same product (target: >= 90% of variants named right).
- A/B: for --ab-products held-out products and every segment with a variant of them, the storefront's
  arms (the original photo and the segment's variant); each impression goes to a random shopper of the
  segment, the arm is ``bandit.choose(arms, rng, --exploration)`` and the click follows the click model.
  Reported: the first impression after which the truly best arm (highest mean CTR over the segment's
  shoppers under the click model) had >= 80% of the last --ab-window impressions, and its share of the
  final window.

Full run (estimated 3-6 minutes on 2 cores, mostly the classifier (15 epochs over 1,275 photos) and the
744 variants; not timed end to end yet):

    .venv/bin/python bench/personalize.py --threads 2 --data ../shared/data/clothing-dataset-small

Smoke run (every code path, 2 classes, under a minute): ``.venv/bin/python bench/personalize.py --quick --out /tmp/p``.
Results: <out>/<date>-personalize.json and .md.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

import django  # noqa: E402

django.setup()

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.common import DATA, list_classes, log, machine, photo_paths, write_results  # noqa: E402
from imagegen.conf import settings as imagegen_settings  # noqa: E402
from imagegen.backends import get_backend  # noqa: E402
from imagegen.jobcore.errors import JobError  # noqa: E402
from imagegen.services.operations import background  # noqa: E402
from imagegen.storefront.services import bandit  # noqa: E402
from imagegen.storefront.services.taste import EVENT_WEIGHTS, backdrop_colour, features_of  # noqa: E402
from mlcore.data import load_image, stack_images  # noqa: E402
from mlcore.metrics.features import train_feature_extractor  # noqa: E402

LAB_SCALE = torch.tensor([100.0, 128.0, 128.0])  # taste.features_of's scaling of L, a, b
# Hidden taste clusters (preferred backdrop, CIELAB). Chosen around and beyond the catalogue's own
# backdrops (test split: L 67 +- 14, a 5 +- 7, b 10 +- 8), so some tastes are visible in what shoppers
# click on the originals and some are not: the simulation should be able to show both.
TASTE_CLUSTERS = {
    "light warm": (88.0, 2.0, 14.0),
    "cool grey-blue": (72.0, -4.0, -14.0),
    "dark": (32.0, 0.0, 0.0),
    "beige": (66.0, 10.0, 26.0),
}
CLASSIFIER_BATCH = 32  # what bench/quality.py trains the same classifier with
IDENTITY_TARGET = 0.9
AB_SHARE = 0.8
QUICK = {
    "classes": 2, "test_per_class": 12, "train_per_class": 20, "shoppers": 60, "views": 12,
    "classifier_seconds": 20.0, "ab_products": 2, "ab_impressions": 1500,
}
FULL = {
    "classes": None, "test_per_class": None, "train_per_class": None, "shoppers": 400, "views": 60,
    "classifier_seconds": 300.0, "ab_products": 5, "ab_impressions": 5000,
}


# --- data ------------------------------------------------------------------------------------------------

def shrink(path: Path, long_side: int) -> Image.Image:
    image = load_image(path)
    image.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return image


def load_train(split: Path, classes: list[str], per_class: int | None, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    pictures, labels = [], []
    for index, name in enumerate(classes):
        for path in photo_paths(split, [name], per_class):
            pictures.append(load_image(path))
            labels.append(index)
    return stack_images(pictures, size), torch.tensor(labels, dtype=torch.long)


def load_products(split: Path, classes: list[str], per_class: int | None, long_side: int) -> list[dict[str, Any]]:
    """Test-split products, alternately 'browse' and 'held_out' within each class (both sets see every class)."""
    products = []
    for index, name in enumerate(classes):
        for position, path in enumerate(photo_paths(split, [name], per_class)):
            photo = shrink(path, long_side)
            products.append({
                "path": path, "label": index, "photo": photo, "features": features_of(photo),
                "set": "browse" if position % 2 == 0 else "held_out",
            })
    return products


# --- the click model -------------------------------------------------------------------------------------

def delta_e(preference: torch.Tensor, features: list[float] | tuple[float, ...]) -> float:
    """CIELAB distance between a hidden preferred backdrop (L, a, b) and an image's backdrop features."""
    return float(torch.dist(preference, torch.tensor(features[3:6]) * LAB_SCALE))


def match(preference: torch.Tensor, features, scale: float) -> float:
    return math.exp(-delta_e(preference, features) / scale)


# --- the classifier ----------------------------------------------------------------------------------------

def train_classifier(images, labels, classes, *, epochs: int, seconds: float, image_size: int, seed: int):
    """The catalogue classifier: ``epochs``, or as many as one timed epoch says fit in ``seconds``.

    The trainer's cosine schedule needs the epoch count up front, so the budget cannot be a deadline inside
    the loop; the calibration model is kept when the budget only allows one epoch.
    """
    def train(epochs: int):
        return train_feature_extractor(
            images, labels, classes, image_size=image_size, epochs=epochs, batch_size=CLASSIFIER_BATCH, seed=seed,
        )

    started = time.perf_counter()
    extractor = train(1)
    per_epoch = time.perf_counter() - started
    affordable = max(1, int((seconds - per_epoch) / per_epoch))
    run = min(epochs, affordable)
    if run > 1:
        extractor = train(run)
    return extractor, {"epochs": run, "epochs_asked": epochs, "capped_by_seconds": run < epochs,
                       "seconds_per_epoch": round(per_epoch, 2), "seconds": round(time.perf_counter() - started, 1)}


# --- the run ---------------------------------------------------------------------------------------------

def make_shoppers(count: int, noise: float, seed: int) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(seed)
    names = list(TASTE_CLUSTERS)
    shoppers = []
    for i in range(count):
        cluster = names[i % len(names)]
        preference = torch.tensor(TASTE_CLUSTERS[cluster]) + noise * torch.randn(3, generator=gen)
        preference[0] = preference[0].clamp(0.0, 100.0)
        shoppers.append({"cluster": cluster, "preference": preference})
    return shoppers


def browse(shoppers, browse_set, args, rng: random.Random) -> None:
    """Each shopper's clicks on originals and the taste ``taste.shopper_tastes`` would derive from them."""
    click_weight = EVENT_WEIGHTS["click"]
    for shopper in shoppers:
        shown = rng.sample(browse_set, min(args.views, len(browse_set)))
        clicked = [p for p in shown if rng.random() < args.base_rate * match(shopper["preference"], p["features"], args.scale)]
        weight = click_weight * len(clicked)
        shopper["clicks"] = len(clicked)
        shopper["taste"] = (torch.tensor([p["features"] for p in clicked]).mean(dim=0) if clicked else None)
        shopper["eligible"] = bool(clicked) and weight >= imagegen_settings.SEGMENT_MIN_EVENTS


def kmeans(points: torch.Tensor, k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The segments' k-means, as ``taste.refresh_segments`` runs it (the backend's, on lists)."""
    centroids, assignment = get_backend().cluster_tastes(points.tolist(), k, seed)
    return torch.tensor(centroids), torch.tensor(assignment)


def segment(shoppers, k: int, seed: int) -> list[dict[str, Any]]:
    eligible = [s for s in shoppers if s["eligible"]]
    for shopper in shoppers:
        shopper["segment"] = None
    if not eligible:
        return []
    centroids, assignment = kmeans(torch.stack([s["taste"] for s in eligible]), k, seed)
    segments = []
    for j, centre in enumerate(centroids):
        centroid = [round(float(v), 5) for v in centre]
        members = [s for s, a in zip(eligible, assignment.tolist()) if a == j]
        for shopper in members:
            shopper["segment"] = j
        lab = torch.tensor(centroid[3:6]) * LAB_SCALE
        nearest = min(TASTE_CLUSTERS, key=lambda name: float(torch.dist(lab, torch.tensor(TASTE_CLUSTERS[name]))))
        counts = {name: sum(1 for s in members if s["cluster"] == name) for name in TASTE_CLUSTERS}
        segments.append({
            "index": j,
            "colour": backdrop_colour(SimpleNamespace(centroid=centroid)),
            "centroid": centroid,
            "shoppers": len(members),
            "members_by_cluster": counts,
            "purity": round(max(counts.values()) / len(members), 4) if members else None,
            "nearest_cluster": nearest,
            "delta_e_to_nearest_cluster": round(float(torch.dist(lab, torch.tensor(TASTE_CLUSTERS[nearest]))), 2),
        })
    return segments


class MaskOncePerPhoto:
    """The classical segmenter ``background.apply`` uses when given None, remembering each photo's mask.

    The shop runs one edit job per variant and cuts the photo out every time; the mask depends on the photo
    only, so the simulation computes it once per product instead of once per segment (same variants, far
    less time: the cut-out is most of a variant's cost).
    """

    def __init__(self) -> None:
        from mlcore.background import Segmenter

        self.segmenter = Segmenter.classical()
        self.masks: dict[int, Any] = {}

    def mask(self, photo: Image.Image):
        # Keyed by identity: every product's photo object lives for the whole run, so ids are not reused.
        if id(photo) not in self.masks:
            self.masks[id(photo)] = self.segmenter.mask(photo)
        return self.masks[id(photo)]


def make_variants(products, segments) -> dict[str, int]:
    """Every held-out product on every segment's backdrop, as the edit job makes it."""
    failed: dict[str, int] = {}
    segmenter = MaskOncePerPhoto()
    for product in products:
        product["variants"] = {}
        for seg in segments:
            options = background.clean({
                "background": seg["colour"], "backdrop": "studio", "fill": 0.85, "shadow": False, "size": None,
            })
            try:
                variant = background.apply(product["photo"], options, segmenter).convert("RGB")
            except JobError as exc:  # the edit job fails the same way: no variant, the original is shown
                failed[str(exc)] = failed.get(str(exc), 0) + 1
                continue
            product["variants"][seg["index"]] = {"image": variant, "features": features_of(variant)}
    return failed


def score_matches(shoppers, held_out, args) -> dict[str, Any]:
    rows = {"original": [], "personalized": []}
    segmented = {"original": [], "personalized": []}
    better = pairs = 0
    for shopper in shoppers:
        for product in held_out:
            original = match(shopper["preference"], product["features"], args.scale)
            variant = product["variants"].get(shopper["segment"]) if shopper["segment"] is not None else None
            personal = match(shopper["preference"], variant["features"], args.scale) if variant else original
            rows["original"].append(original)
            rows["personalized"].append(personal)
            if variant:
                segmented["original"].append(original)
                segmented["personalized"].append(personal)
                pairs += 1
                better += personal > original

    def summary(values: list[float]) -> dict[str, float] | None:
        if not values:
            return None
        mean = statistics.fmean(values)
        return {"match_mean": round(mean, 4), "ctr_mean": round(args.base_rate * mean, 4)}

    return {
        "all_shoppers": {name: summary(values) for name, values in rows.items()},
        "pairs_with_variant": {name: summary(values) for name, values in segmented.items()},
        "pairs": len(rows["original"]),
        "pairs_shown_a_variant": pairs,
        "share_variant_matches_better": round(better / pairs, 4) if pairs else None,
    }


def identity(extractor, held_out, size: int) -> dict[str, Any]:
    made = [(p, v) for p in held_out for v in p["variants"].values()]
    originals = extractor.predict(stack_images([p["photo"] for p in held_out], size))
    result: dict[str, Any] = {
        "originals": len(held_out),
        "original_accuracy": round(float((originals == torch.tensor([p["label"] for p in held_out])).float().mean()), 4),
        "variants": len(made),
    }
    if not made:
        return result | {"variant_accuracy": None, "variant_agrees_with_original": None, "target_met": False}
    predicted = extractor.predict(stack_images([v["image"] for _, v in made], size))
    truth = torch.tensor([p["label"] for p, _ in made])
    position = {id(p): i for i, p in enumerate(held_out)}
    on_original = torch.stack([originals[position[id(p)]] for p, _ in made])
    accuracy = float((predicted == truth).float().mean())
    # On the same products as the variants: originals whose variant failed would otherwise skew the comparison.
    same = float((on_original == truth).float().mean())
    return result | {
        "original_accuracy_same_products": round(same, 4),
        "variant_accuracy": round(accuracy, 4),
        "variant_agrees_with_original": round(float((predicted == on_original).float().mean()), 4),
        "target": IDENTITY_TARGET,
        "target_met": accuracy >= IDENTITY_TARGET,
    }


def ab_test(shoppers, held_out, segments, args, rng: random.Random) -> dict[str, Any]:
    candidates = [p for p in held_out if p["variants"]]
    chosen = rng.sample(candidates, min(args.ab_products, len(candidates)))
    runs = []
    for product in chosen:
        for seg in segments:
            variant = product["variants"].get(seg["index"])
            members = [s for s in shoppers if s["segment"] == seg["index"]]
            if variant is None or not members:
                continue
            images = {0: product["features"], 1: variant["features"]}  # 0 = ArmStats.ORIGINAL

            def ctr(shopper, arm: int, images=images) -> float:
                return args.base_rate * match(shopper["preference"], images[arm], args.scale)

            truth = {arm: statistics.fmean(ctr(s, arm) for s in members) for arm in images}
            best = max(truth, key=truth.get)
            counts = {arm: [0, 0] for arm in images}
            history: list[int] = []
            in_window = 0
            converged_at = None
            for n in range(1, args.ab_impressions + 1):
                shopper = rng.choice(members)
                arms = [bandit.Arm(arm, shown, clicks) for arm, (shown, clicks) in counts.items()]
                arm = bandit.choose(arms, rng, args.exploration)
                counts[arm][0] += 1
                counts[arm][1] += rng.random() < ctr(shopper, arm)
                history.append(arm)
                in_window += arm == best
                if n > args.ab_window:
                    in_window -= history[n - 1 - args.ab_window] == best
                if converged_at is None and n >= args.ab_window and in_window >= AB_SHARE * args.ab_window:
                    converged_at = n
            window = history[-args.ab_window:]
            runs.append({
                "product": product["path"].name, "segment": seg["index"],
                "true_ctr": {"original": round(truth[0], 4), "variant": round(truth[1], 4)},
                "best": "variant" if best == 1 else "original",
                "converged_at": converged_at,
                "final_share_of_best": round(sum(a == best for a in window) / len(window), 4),
                "impressions": {"original": counts[0][0], "variant": counts[1][0]},
                "clicks": {"original": counts[0][1], "variant": counts[1][1]},
            })
    converged = [r["converged_at"] for r in runs if r["converged_at"] is not None]
    return {
        "runs": runs,
        "pairs": len(runs),
        "converged": len(converged),
        "converged_at_median": statistics.median(converged) if converged else None,
        "converged_at_max": max(converged) if converged else None,
        "final_share_of_best_mean": round(statistics.fmean(r["final_share_of_best"] for r in runs), 4) if runs else None,
        "best_is_variant": sum(r["best"] == "variant" for r in runs),
    }


def percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def markdown(result: dict[str, Any]) -> str:
    m, ident, ab = result["match"], result["identity"], result["ab"]
    lines = [
        f"# Personalization simulation, {datetime.date.today()}",
        "",
        f"Simulated shoppers with hidden backdrop tastes on the clothing test split; {result['machine']['processor']}, "
        f"{result['machine']['usable_cpus']} CPUs, {result['machine']['device']}. The click model and every setting "
        "are in the JSON and the script's docstring.",
        "",
        "| images shown | mean match (all shoppers) | expected CTR (all) | mean match (pairs with a variant) | expected CTR (pairs with a variant) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in ("original", "personalized"):
        everyone, with_variant = m["all_shoppers"][name], m["pairs_with_variant"][name] or {}
        lines.append(
            f"| {name} | {everyone['match_mean']:.3f} | {everyone['ctr_mean']:.2%} | "
            f"{with_variant.get('match_mean', float('nan')):.3f} | {with_variant.get('ctr_mean', float('nan')):.2%} |"
        )
    lines += [
        "",
        "| segment | colour | shoppers | purity | nearest hidden cluster (dE) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for seg in result["segments"]:
        purity = "-" if seg["purity"] is None else f"{seg['purity']:.0%}"
        lines.append(
            f"| {seg['index']} | {seg['colour']} | {seg['shoppers']} | {purity} | "
            f"{seg['nearest_cluster']} ({seg['delta_e_to_nearest_cluster']}) |"
        )
    agree = ident["variant_agrees_with_original"]
    lines += [
        "",
        "| products | variants (failed) | classifier on originals | on variants | variant = original's prediction | target >= 90% met |",
        "| --- | --- | --- | --- | --- | --- |",
        (f"| {ident['originals']} | {ident['variants']} ({sum(result['variants_failed'].values())}) | "
         f"{ident['original_accuracy']:.1%} | {percent(ident['variant_accuracy'])} | {percent(agree)} | "
         f"{'yes' if ident['target_met'] else 'no'} |"),
        "",
        (f"| A/B pairs | best arm = variant | best arm >= {AB_SHARE:.0%} of last {result['settings']['ab_window']} | "
         "impressions until then (median / max) | final share of best (mean) |"),
        "| --- | --- | --- | --- | --- |",
        (f"| {ab['pairs']} | {ab['best_is_variant']} | {ab['converged']} | {ab['converged_at_median']} / "
         f"{ab['converged_at_max']} | {ab['final_share_of_best_mean']} |"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--stem", default=None)
    parser.add_argument("--quick", action="store_true", help="tiny run of every code path (the smoke test)")
    parser.add_argument("--classes", type=int, help="first N classes (default: all; --quick: 2)")
    parser.add_argument("--test-per-class", type=int, help="test photos per class (default: all)")
    parser.add_argument("--train-per-class", type=int, help="classifier training photos per class (default: all)")
    parser.add_argument("--shoppers", type=int)
    parser.add_argument("--views", type=int, help="browse products shown to each shopper")
    parser.add_argument("--classifier-epochs", type=int, default=15, help="the classifier's epochs (the app's 15)")
    parser.add_argument("--classifier-seconds", type=float, help="wall-clock cap on the classifier's training")
    parser.add_argument("--ab-products", type=int)
    parser.add_argument("--ab-impressions", type=int, help="impressions per (product, segment) A/B run")
    parser.add_argument("--ab-window", type=int, default=500)
    parser.add_argument("--segments", type=int, default=imagegen_settings.SEGMENTS)
    parser.add_argument("--exploration", type=float, default=imagegen_settings.BANDIT_EXPLORATION)
    parser.add_argument("--base-rate", type=float, default=0.3, help="click probability on a perfect match")
    parser.add_argument("--scale", type=float, default=15.0, help="CIELAB dE at which click probability falls to 1/e")
    parser.add_argument("--taste-noise", type=float, default=6.0, help="sd of a shopper's preference around its cluster (L, a, b)")
    parser.add_argument("--long-side", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=64, help="the classifier's input size (the app's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.ab_impressions < args.ab_window:
        parser.error("--ab-impressions must be at least --ab-window")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.perf_counter()

    classes = list_classes(args.data / "test", args.classes)
    log(f"loading test products of {len(classes)} classes")
    products = load_products(args.data / "test", classes, args.test_per_class, args.long_side)
    browse_set = [p for p in products if p["set"] == "browse"]
    held_out = [p for p in products if p["set"] == "held_out"]

    shoppers = make_shoppers(args.shoppers, args.taste_noise, args.seed)
    browse(shoppers, browse_set, args, random.Random(f"{args.seed}-browse"))
    segments = segment(shoppers, args.segments, args.seed)
    eligible = sum(s["eligible"] for s in shoppers)
    log(f"{len(shoppers)} shoppers, {eligible} with enough clicks, {len(segments)} segments: "
        + ", ".join(s["colour"] for s in segments))

    log(f"making {len(held_out) * len(segments)} variants")
    variants_started = time.perf_counter()
    failed = make_variants(held_out, segments)
    variant_seconds = time.perf_counter() - variants_started
    matches = score_matches(shoppers, held_out, args)

    log(f"training the classifier ({args.classifier_epochs} epochs, at most ~{args.classifier_seconds:.0f} s)")
    train_images, train_labels = load_train(args.data / "train", classes, args.train_per_class, args.image_size)
    extractor, training = train_classifier(
        train_images, train_labels, classes, epochs=args.classifier_epochs, seconds=args.classifier_seconds,
        image_size=args.image_size, seed=args.seed,
    )
    training |= {"train_images": len(train_images), "version_id": extractor.version_id}
    identity_result = identity(extractor, held_out, args.image_size)

    log("A/B simulation")
    ab = ab_test(shoppers, held_out, segments, args, random.Random(f"{args.seed}-ab"))

    clicks = [s["clicks"] for s in shoppers]
    result = {
        "machine": machine(torch.get_num_threads()),
        "data": {
            "classes": classes, "browse_products": len(browse_set), "held_out_products": len(held_out),
            "train_photos": len(train_images),
        },
        "click_model": {
            "formula": "P(click) = base_rate * exp(-dE76(hidden preferred backdrop, image backdrop) / scale)",
            "base_rate": args.base_rate, "scale": args.scale, "taste_clusters": TASTE_CLUSTERS,
            "taste_noise": args.taste_noise,
        },
        "shoppers": {
            "count": len(shoppers), "segmented": eligible, "clicks_mean": round(statistics.fmean(clicks), 2),
            "min_event_weight": imagegen_settings.SEGMENT_MIN_EVENTS,
        },
        "segments": segments,
        "variants_made": sum(len(p["variants"]) for p in held_out),
        "variants_failed": failed,
        "variant_seconds_total": round(variant_seconds, 1),
        "match": matches,
        "classifier": training,
        "identity": identity_result,
        "ab": ab,
        "seconds": round(time.perf_counter() - started, 1),
        "settings": vars(args) | {"data": str(args.data), "out": str(args.out)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, args.stem or f"{datetime.date.today()}-personalize", result, markdown(result))
    log("done")
    return result


if __name__ == "__main__":
    main()
