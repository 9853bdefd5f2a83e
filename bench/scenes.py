"""Product scenes: the scene generator, harmonisation, composites, realism against a detector, identity and speed.

One run on one machine (2 CPU cores), every number from the same photos (26 min on a shared 2-core machine):

    .venv/bin/python bench/scenes.py

Smoke run (every code path, seconds, written to a temporary folder): ``.venv/bin/python bench/scenes.py --tiny``.

Data (--data, the clothing photos; the test split is never trained on):
- Scan: the classical border model (``mlcore.background.classical.border_matte``) on the first --train-per-class
  train photos of each class and on the test photos (the first --test-per-class it is confident about per class).
  Without a trained segmenter the app cuts out only the photos this model is confident about
  (``imagegen.backends.torch.scenes.product_mask``), so those are the products here too.
- The shop's own backdrops: ``empty_backdrop(photo, mask)`` (classical fill) of the confident train photos (the
  scene GAN's training set) and of the confident test photos (held out, the reference of FID/KID).

1. Scene generator: the "scenes" kind (``mlcore.registry``) trained by the one Trainer on the train backdrops for
   --gen-minutes; FID and KID of --samples generated backdrops (EMA sampler) against the held-out backdrops'
   centre squares, in the feature space of the catalogue classifier (a ``FeatureExtractor`` trained from scratch
   on the whole train split's categories for at most --features-minutes). Baselines: copies (the GAN's own
   training images: centre and random square crops of the train backdrops) and the studio sweep in the train
   backdrops' mean colour. Near copies: the share of images whose nearest training image is closer than the 1st
   percentile of the distances between distinct training backdrops (one centre crop per photo), in features and
   in 32 px thumbnails, for generated and for held-out backdrops.
2. Harmonisation: the "harmonise" kind trained on the train photos for --harm-minutes;
   ``mlcore.harmonise.evaluation`` on the test products, each perturbed by a seeded random perturbation:
   PSNR (product pixels) and mean CIE76 of no change, Reinhard, histogram matching and ours (no budget, and
   within the default ΔE budget).
3. Composites, for every test product, at the product's own place and scale in a canvas of its photo's shape
   (aspect "original"; the layout's fill, floor and x are the product's box in its photo, so scale is 1.0):
   ours = soft matte + shadows (``Lighting(pose=--pose)``; "flat", the default, since the clothing photos are flat
   lays and garments hanging against a wall: a drop shadow and a sharp backdrop; "standing": contact and cast
   shadows on the floor line and depth of field) + harmonisation within the default ΔE budget, on two backdrops: a generated one, and a real one (``photo_window`` of a train photo's empty
   backdrop, what the app serves from a scene set of the shop's own photos while no generator passes its
   gate); naive = the binary classical mask, no shadow, no harmonisation, no depth of field, on the same two
   backdrops. The real backdrop isolates the composition from the generator's quality.
4. Realism: a small CNN trained from scratch to tell the real test photos from the composites, for naive and
   for ours separately, on each backdrop source; two-fold by product (train on half the products' real photo and composite, test on the
   other half, then swapped), balanced classes, 128 x 128 inputs. Composites are JPEG-encoded with their own
   original's quantisation tables and chroma subsampling, and real photos and composites go through the same
   decode and resize, so file format and resampling tell nothing.
5. Identity: the catalogue classifier's accuracy on the original test products vs on our composites; the share
   of product pixels (placed alpha 255) whose harmonisation change exceeds the ΔE budget, measured in CIELAB
   against the photo's own pixels (the product is not resampled), and the harmoniser's own report.
6. Speed: seconds for one composite at 1024 px long side (soft matte + compose_scene with shadows and
   harmonisation; the border model's mask timed apart), backdrops per second at batch 1 and 16.
7. Pictures: <date>-scenes.png (12 test products: original | ours and naive on a generated backdrop | ours and
   naive on a shop backdrop) and
   <date>-scenes-backdrops.png (generated backdrops, then training and held-out ones).

Threads: training, the detector and the speed figures use --threads (2); the per-photo work (border model, empty
backdrops, mattes, composites) uses --prep-threads (1): small tensor ops on a shared 2-core machine run many times
slower with two OpenMP threads (measured 0.14 s vs 2.0 s per border matte while other work ran).
Results: <out>/<date>-scenes.json, .md, .png and -backdrops.png.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DATA, IMAGE_SUFFIXES, list_classes, log, machine  # noqa: E402

import mlcore  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image, ImageDraw, ImageOps, JpegImagePlugin  # noqa: E402
from torch import nn  # noqa: E402
from torchvision.transforms.functional import pil_to_tensor  # noqa: E402

from mlcore.background.classical import border_matte  # noqa: E402
from mlcore.background.images import mask_to_image  # noqa: E402
from mlcore.background.textures import studio_sweep  # noqa: E402
from mlcore.cielab import srgb_to_lab  # noqa: E402
from mlcore.data import load_image, stack_images  # noqa: E402
from mlcore.harmonise import evaluation as harmonise_eval  # noqa: E402
from mlcore.metrics import (  # noqa: E402
    density_coverage, flag_near_copies, frechet_distance, kernel_inception_distance, pixel_near_copies, precision_recall,
)
from mlcore.metrics.features import train_feature_extractor  # noqa: E402
from mlcore.registry import get_kind  # noqa: E402
from mlcore.scenegen.data import square_crops  # noqa: E402
from mlcore.scenes import Layout, Lighting, compose_scene, soft_matte  # noqa: E402
from mlcore.scenes.backdrops import empty_backdrop, photo_window  # noqa: E402
from mlcore.scenes.grounding import standing_row  # noqa: E402

# The app's catalogue classifier: 64 px, 15 epochs (imagegen.services.evaluation.train_feature_extractor); here
# as many epochs as --features-minutes allows, at most MAX_FEATURE_EPOCHS.
FEATURE_SIZE = 64
APP_FEATURE_EPOCHS = 15
MAX_FEATURE_EPOCHS = 30
FEATURE_BATCH = 32
# The app's ΔE budget for scene harmonisation (IMAGEGEN_SCENE_HARMONISE_MAX_DELTA_E), also HarmoniseConfig's.
DELTA_E_BUDGET = 8.0
DETECTOR_SIZE = 128
DETECTOR_BATCH = 32
DETECTOR_LR = 1e-3
NEAR_COPY_PERCENTILE = 1.0
GRID_PRODUCTS = 12
# Our composites' depth of field and shadows per pose (the scene operation's defaults).
POSE_DEPTH_OF_FIELD = {"flat": 0.0, "standing": 1.0}
POSE_SHADOWS = {"flat": "a drop shadow and an outline occlusion", "standing": "contact and cast shadows"}
# The composites' two backdrops per product (``make_composites``).
BACKDROP_SOURCES = ["generated", "shop"]
GRID_TILE = (180, 240)
SPEED_SIDE = 1024
TARGET_HARMONISE_DB = 1.0
TARGET_REALISM_POINTS = 0.15
# The IJG (JPEG Annex K) luminance table in natural order: what quality 50 quantises with.
IJG_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)
FULL = {
    "classes": None, "train_per_class": 40, "test_per_class": None, "gen_minutes": 6.0, "features_minutes": 3.0,
    "harm_minutes": 4.0, "image_size": 256, "samples": 256, "detector_epochs": 20, "speed_repeats": 5,
    "speed_side": SPEED_SIDE, "min_photos": None,
}
TINY = {
    "classes": 3, "train_per_class": 10, "test_per_class": 3, "gen_minutes": 0.05, "features_minutes": 0.02,
    "harm_minutes": 0.02, "image_size": 64, "samples": 8, "detector_epochs": 1, "speed_repeats": 1,
    "speed_side": 256, "min_photos": 2,
}


# --- small helpers -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def threads(count: int):
    """torch's intra-op threads set to ``count`` inside the block (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def r(value: float, digits: int = 4) -> float:
    return round(float(value), digits)


def uint8_tensor(image: Image.Image) -> torch.Tensor:
    return pil_to_tensor(image.convert("RGB"))


def checkpoint_bytes(trainer) -> bytes:
    buffer = io.BytesIO()
    trainer.save(buffer)
    return buffer.getvalue()


def train_for(trainer, minutes: float, label: str) -> dict[str, Any]:
    """``trainer.fit`` for ``minutes`` of wall clock, logging about ten times; the summary, with load averages."""
    every = max(5.0, minutes * 6)
    last = [time.perf_counter()]

    def progress(step: int, _total: int, losses: dict[str, float]) -> None:
        if time.perf_counter() - last[0] >= every:
            last[0] = time.perf_counter()
            log(f"  {label} step {step}: " + " ".join(f"{k} {v:.3f}" for k, v in losses.items()))

    before = os.getloadavg()
    summary = trainer.fit(10**9, max_seconds=minutes * 60, callback=progress)
    log(f"{label}: {summary['steps_done']} steps in {summary['seconds']:.0f} s")
    return {
        "steps": summary["steps_done"], "seconds": r(summary["seconds"], 1), "batch_size": trainer.batch_size,
        "images_per_second": r(summary["images_per_second"], 2), "stopped": summary["stopped"],
        "final_losses": {k: r(v) for k, v in summary["losses"].items()},
        "hyperparameters": trainer.hyperparameters(),
        "load_average_before": [r(x, 2) for x in before], "load_average_after": [r(x, 2) for x in os.getloadavg()],
    }


# --- data ------------------------------------------------------------------------------------------------


@dataclass
class Photo:
    """One photo of the dataset as the benchmark uses it: decoded upright RGB, and the border model's verdict
    (its alpha kept only when it is confident: that is the product's mask)."""

    path: Path
    category: str
    label: int
    image: Image.Image
    confident: bool
    reasons: list[str]
    alpha: torch.Tensor | None = None
    jpeg: dict[str, Any] = field(default_factory=dict)

    @property
    def mask(self) -> Image.Image:
        """The product's mask as the app makes it without a segmenter (``product_mask``)."""
        return mask_to_image(self.alpha)


def jpeg_settings(path: Path) -> dict[str, Any]:
    """The quantisation tables and chroma subsampling of a JPEG file (empty for other formats), so a composite
    can be encoded exactly as its original was."""
    with Image.open(path) as opened:
        if opened.format != "JPEG":
            return {}
        tables = {int(k): list(v) for k, v in opened.quantization.items()}
        return {"qtables": tables, "subsampling": JpegImagePlugin.get_sampling(opened)}


def estimate_quality(luminance: list[int]) -> int:
    """The IJG quality (1..100) whose scaled standard luminance table is closest to ``luminance`` (natural
    order, as Pillow reports it)."""
    def table(quality: int) -> list[int]:
        scale = 5000 / quality if quality < 50 else 200 - 2 * quality
        return [min(255, max(1, (v * scale + 50) // 100)) for v in IJG_LUMINANCE]

    return min(range(1, 101), key=lambda q: sum(abs(a - b) for a, b in zip(table(q), luminance)))


def scan_split(split_dir: Path, classes: list[str], *, per_class: int | None, stop_at_confident: bool) -> tuple[list[Photo], dict]:
    """Decode the photos of each class in file-name order and run the border model on each. With
    ``stop_at_confident`` a class stops after ``per_class`` confident photos; otherwise after ``per_class``
    photos. Returns the photos and per-class counts."""
    photos, counts = [], {}
    for label, name in enumerate(classes):
        files = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if per_class and not stop_at_confident:
            files = files[:per_class]
        seen = confident = 0
        for path in files:
            if per_class and stop_at_confident and confident >= per_class:
                break
            image = load_image(path)
            matte = border_matte(image)
            photo = Photo(path, name, label, image, matte.confident, list(matte.reasons))
            if matte.confident:
                photo.alpha = matte.alpha
                photo.jpeg = jpeg_settings(path)
                confident += 1
            photos.append(photo)
            seen += 1
        counts[name] = {"scanned": seen, "confident": confident, "in_folder": len(files)}
    return photos, counts


def backdrops_of(photos: list[Photo]) -> list[Image.Image]:
    """The empty backdrop of each (confident) photo: product cut out and the hole filled classically."""
    return [empty_backdrop(p.image, p.mask, seed=i) for i, p in enumerate(photos)]


def centre_squares(images: list[Image.Image], size: int) -> torch.Tensor:
    """uint8 N x 3 x size x size: the centre square of each image (``square_crops``' first crop, as the scene
    GAN's training set takes it)."""
    generator = torch.Generator().manual_seed(0)
    return torch.stack([square_crops(image.convert("RGB"), 1, size, generator)[0] for image in images])


# --- 1. the scene generator --------------------------------------------------------------------------------


def train_catalogue_classifier(train_dir: Path, classes: list[str], minutes: float, seed: int):
    """The catalogue classifier (``FeatureExtractor``) on every train photo of ``classes``, squared as the app
    squares photos; epochs: as many as ``minutes`` allows (one timed probe epoch), 1..MAX_FEATURE_EPOCHS."""
    images, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(p for p in (train_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        images += [load_image(path) for path in files]
        labels += [label] * len(files)
    data = stack_images(images, FEATURE_SIZE)
    targets = torch.tensor(labels, dtype=torch.long)
    started = time.perf_counter()
    train_feature_extractor(data, targets, classes, image_size=FEATURE_SIZE, epochs=1, batch_size=FEATURE_BATCH, seed=seed)
    epoch_seconds = time.perf_counter() - started
    epochs = int(max(1, min(MAX_FEATURE_EPOCHS, (minutes * 60 - epoch_seconds) // max(epoch_seconds, 1e-3))))
    started = time.perf_counter()
    extractor = train_feature_extractor(
        data, targets, classes, image_size=FEATURE_SIZE, epochs=epochs, batch_size=FEATURE_BATCH, seed=seed,
    )
    seconds = time.perf_counter() - started
    log(f"catalogue classifier {extractor.version_id}: {epochs} epochs on {len(data)} photos in {seconds:.0f} s "
        f"(train accuracy {extractor.summary['train_accuracy']:.3f})")
    return extractor, {
        "version_id": extractor.version_id, "train_photos": len(data), "epochs": epochs,
        "app_epochs": APP_FEATURE_EPOCHS, "probe_epoch_seconds": r(epoch_seconds, 1), "seconds": r(seconds, 1),
        "image_size": FEATURE_SIZE, "feature_dim": extractor.feature_dim,
        "train_accuracy": r(extractor.summary["train_accuracy"]), "final_loss": r(extractor.summary["final_loss"]),
    }


def generate_backdrops(generator, count: int, seed: int, chunk: int = 32) -> torch.Tensor:
    """uint8 N x 3 x S x S backdrops of the EMA sampler, seeds ``seed``, ``seed`` + chunk, ... per chunk."""
    out = []
    for start in range(0, count, chunk):
        images = generator.backdrop_tensor(min(chunk, count - start), seed + start)
        out.append(images.add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def studio_sweeps(colour: torch.Tensor, count: int, size: int, seed: int) -> torch.Tensor:
    """uint8 N x 3 x S x S studio sweeps in ``colour`` (3 floats in [0, 1]), each with its own dither seed."""
    sweeps = [studio_sweep(colour, size, size, torch.Generator().manual_seed(seed + i)) for i in range(count)]
    return torch.stack(sweeps).mul(255.0).round().clamp(0, 255).to(torch.uint8)


def draw(images: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """``count`` of ``images``, drawn without replacement while they last (seeded)."""
    generator = torch.Generator().manual_seed(seed)
    order = torch.cat([torch.randperm(len(images), generator=generator) for _ in range(math.ceil(count / len(images)))])
    return images[order[:count]]


def near_copy_shares(extractor, images: torch.Tensor, train_all: torch.Tensor, train_centres: torch.Tensor) -> dict[str, Any]:
    """Share of ``images`` whose nearest training image (any crop) is closer than the 1st percentile of the
    nearest-neighbour distances between distinct training backdrops (their centre crops), in the classifier's
    features and in 32 px thumbnails (mean absolute difference)."""
    features, all_features = extractor.features(images), extractor.features(train_all)
    feature_threshold = flag_near_copies(all_features[:2], extractor.features(train_centres), percentile=NEAR_COPY_PERCENTILE).threshold
    pixel_threshold = pixel_near_copies(train_all[:2], train_centres, percentile=NEAR_COPY_PERCENTILE).threshold
    by_features = flag_near_copies(features, all_features, threshold=feature_threshold)
    by_pixels = pixel_near_copies(images, train_all, threshold=pixel_threshold)
    return {
        "features_share": r(by_features.flags.double().mean()), "features_flagged": int(by_features.flags.sum()),
        "features_threshold": r(feature_threshold), "pixels_share": r(by_pixels.flags.double().mean()),
        "pixels_flagged": int(by_pixels.flags.sum()), "pixels_threshold": r(pixel_threshold),
        "either_share": r((by_features.flags | by_pixels.flags).double().mean()), "images": len(images),
    }


def distribution_scores(extractor, reference: torch.Tensor, images: torch.Tensor, seed: int) -> dict[str, float]:
    """FID and KID against ``reference`` in the classifier's features, and precision / recall / density / coverage
    (k = 5): FID alone rewards a collapsed generator that draws the reference's mean, recall and coverage do not."""
    real, fake = extractor.features(reference), extractor.features(images)
    kid, kid_std = kernel_inception_distance(real, fake, subsets=100, subset_size=min(len(real), len(fake), 1000), seed=seed)
    k = max(1, min(5, len(real) - 1, len(fake) - 1))
    precision, recall = precision_recall(real, fake, k=k)
    density, coverage = density_coverage(real, fake, k=k)
    return {"fid": r(frechet_distance(real, fake), 3), "kid": r(kid, 5), "kid_std": r(kid_std, 5),
            "precision": r(precision, 3), "recall": r(recall, 3), "density": r(density, 3), "coverage": r(coverage, 3),
            "k": k, "images": len(images)}


def backdrop_sheet(path: Path, generated: torch.Tensor, train: torch.Tensor, held_out: torch.Tensor, columns: int = 8) -> None:
    """Two rows of generated backdrops, then one of training (centre crops) and one of held-out backdrops."""
    from torchvision.utils import save_image

    rows = [generated[: 2 * columns], train[:columns], held_out[:columns]]
    tiles = torch.cat([F.interpolate(x.float(), size=(128, 128), mode="bilinear", antialias=True) for x in rows])
    save_image(tiles / 255.0, path, nrow=columns, padding=3, pad_value=1.0)


def scene_generator_section(args, extractor, train_backdrops, test_backdrops, out_png: Path) -> tuple[Any, dict]:
    spec = get_kind("scenes")
    options = {} if args.min_photos is None else {"min_photos": args.min_photos}
    config, data = spec.prepare(train_backdrops, image_size=args.image_size, **options)
    train_images = data[0]
    log(f"scene GAN: {len(train_images)} training images ({len(train_backdrops)} backdrops) at {args.image_size} px")
    with threads(args.threads):
        trainer = spec.trainer(config, *data, seed=args.seed)
        training = train_for(trainer, args.gen_minutes, "scene GAN")
        generator = spec.sampler.from_checkpoint(checkpoint_bytes(trainer))
        del trainer
        generated = generate_backdrops(generator, args.samples, args.seed + 10_000)
    held_out = centre_squares(test_backdrops, args.image_size)
    train_centres = centre_squares(train_backdrops, args.image_size)
    copies = draw(train_images, args.samples, args.seed)
    colour = train_images.float().mean(dim=(0, 2, 3)) / 255.0
    sweeps = studio_sweeps(colour, args.samples, args.image_size, args.seed)
    contenders = {"ours (scene GAN, EMA)": generated, "copies of the train backdrops": copies,
                  "studio sweep in their mean colour": sweeps}
    scores = {name: distribution_scores(extractor, held_out, images, args.seed) for name, images in contenders.items()}
    for name, entry in scores.items():
        log(f"  {name}: FID {entry['fid']:.2f}, KID {entry['kid']:.4f}")
    near = {
        "generated": near_copy_shares(extractor, generated, train_images, train_centres),
        "held-out backdrops": near_copy_shares(extractor, held_out, train_images, train_centres),
        "copies (sanity check)": near_copy_shares(extractor, copies, train_images, train_centres),
    }
    backdrop_sheet(out_png, generated, train_centres, held_out)
    return generator, {
        "training": training,
        "config": config.to_dict(),
        "train_backdrops": len(train_backdrops), "train_images": len(train_images),
        "held_out_backdrops": len(held_out), "samples": args.samples,
        "studio_colour": [r(v, 4) for v in colour.tolist()],
        "scores": scores, "near_copies": near, "percentile": NEAR_COPY_PERCENTILE,
    }


# --- 2. harmonisation ------------------------------------------------------------------------------------


def harmonisation_section(args, train_photos: list[Photo], products: list[Photo]) -> tuple[Any, dict]:
    spec = get_kind("harmonise")
    config, data = spec.prepare([p.image for p in train_photos])
    log(f"harmoniser: {len(data[0])} train photos at {config.size} px")
    with threads(args.threads):
        trainer = spec.trainer(config, *data, seed=args.seed)
        training = train_for(trainer, args.harm_minutes, "harmoniser")
        harmoniser = spec.sampler.from_checkpoint(checkpoint_bytes(trainer))
    cases = harmonise_eval.make_cases([p.image for p in products], seed=args.seed)
    methods = {
        **harmonise_eval.baselines(),
        "ours": harmonise_eval.model_method(harmoniser),
        f"ours within ΔE {config.max_delta_e:g}": harmonise_eval.model_method(harmoniser, config.max_delta_e),
    }
    result = harmonise_eval.evaluate(cases, methods)
    scores = {name: {"psnr_db": r(v["psnr_db"], 3), "delta_e": r(v["delta_e"], 3)} for name, v in result["methods"].items()}
    for name, entry in scores.items():
        log(f"  {name}: PSNR {entry['psnr_db']:.2f} dB, ΔE {entry['delta_e']:.2f}")
    best_other = max(scores[name]["psnr_db"] for name in ("none", "reinhard", "histogram"))
    margin = scores["ours"]["psnr_db"] - best_other
    return harmoniser, {
        "training": training, "config": config.to_dict(),
        "train_photos": len(data[0]), "test_photos": result["photos"], "mask_sources": result["mask_sources"],
        "scored_at_long_side": harmonise_eval.SIDE, "perturbation_seed": args.seed, "methods": scores,
        "margin_over_best_other_db": r(margin, 3),
        "target": {"margin_db": TARGET_HARMONISE_DB, "met": bool(margin >= TARGET_HARMONISE_DB)},
    }


# --- 3. composites -----------------------------------------------------------------------------------------


def layout_in_place(matte: Image.Image) -> Layout:
    """A layout that puts the product exactly where it is in its photo: canvas of the photo's shape and size,
    scale 1.0 (fill = the box's share of the limiting side), the product's standing row (``standing_row``, the
    row placement stands on the floor line) on the floor line, its box centred where it is."""
    alpha = pil_to_tensor(matte)[0].float() / 255.0
    rows, cols = (alpha > 0).any(dim=1).nonzero().flatten(), (alpha > 0).any(dim=0).nonzero().flatten()
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    width, height = matte.size
    fill = max((right - left) / width, (bottom - top) / height)
    base = standing_row(alpha, (left, top, right, bottom))
    return Layout(aspect="original", fill=fill, floor=base / height, x=(left + right) / 2 / width, long_side=None)


def in_place(scene, matte: Image.Image) -> bool:
    """Whether the composite holds the product exactly where its photo has it: same canvas, scale 1.0, and the
    placed alpha equal to the matte pixel for pixel."""
    return scene.scale == 1.0 and tuple(scene.alpha.shape) == (matte.height, matte.width) \
        and torch.equal(scene.alpha, pil_to_tensor(matte)[0])


def budget_harmoniser(harmoniser, budget: float, reports: list[dict]):
    """The harmoniser as ``compose_scene`` calls it, within ``budget``, keeping each report."""
    def harmonise(product, alpha, behind):
        new, report = harmoniser(product, alpha, behind, max_delta_e=budget)
        reports.append(report)
        return new, report

    return harmonise


def jpeg_like_original(image: Image.Image, settings: dict[str, Any]) -> Image.Image:
    """``image`` encoded as its original was (same quantisation tables and subsampling) and decoded; unchanged
    when the original was not a JPEG."""
    if not settings:
        return image
    buffer = io.BytesIO()
    options = {"qtables": settings["qtables"]}
    if settings["subsampling"] >= 0:
        options["subsampling"] = settings["subsampling"]
    image.save(buffer, format="JPEG", **options)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return decoded.convert("RGB")


def detector_input(image: Image.Image) -> torch.Tensor:
    """The one resize path of real photos and composites alike: Pillow bilinear (antialiased) to 128 x 128."""
    return uint8_tensor(image.resize((DETECTOR_SIZE, DETECTOR_SIZE), Image.Resampling.BILINEAR))


def harmonisation_change(composite: Image.Image, photo: Image.Image, alpha: torch.Tensor) -> torch.Tensor:
    """CIE76 between the composite and the photo at the placed product's solid pixels (alpha 255): there the
    composite is the photo's own pixel moved by harmonisation alone (scale 1.0, the product in place)."""
    solid = alpha == 255
    a = uint8_tensor(composite)[:, solid].float()[:, :, None] / 255.0
    b = uint8_tensor(photo)[:, solid].float()[:, :, None] / 255.0
    return (srgb_to_lab(a) - srgb_to_lab(b)).pow(2).sum(dim=0).sqrt().flatten()


def compose_product(photo: Photo, backdrops: list[Image.Image], harmonise, seed: int, pose: str) -> dict[str, Any]:
    """Our scene and the naive paste of one product on each backdrop (see the module docstring), and the mattes."""
    soft = soft_matte(photo.image, photo.mask)
    binary = mask_to_image((photo.alpha >= 0.5).float())
    ours = [
        compose_scene(photo.image, soft, backdrop, layout=layout_in_place(soft), lighting=Lighting(pose=pose),
                      harmonise=harmonise, seed=seed + v, depth_of_field=POSE_DEPTH_OF_FIELD[pose])
        for v, backdrop in enumerate(backdrops)
    ]
    naive = [
        compose_scene(photo.image, binary, backdrop, layout=layout_in_place(binary), lighting=None,
                      harmonise=None, seed=seed + v, depth_of_field=0.0, decontaminate=False)
        for v, backdrop in enumerate(backdrops)
    ]
    return {"ours": ours, "naive": naive, "soft": soft, "binary": binary}


@dataclass
class CompositeSet:
    """What later sections need of the composites, kept small: detector and classifier inputs, ΔE changes."""

    real_detector: list[torch.Tensor] = field(default_factory=list)
    # Per backdrop source (BACKDROP_SOURCES' order): detector and classifier inputs.
    ours_detector: list[list[torch.Tensor]] = field(default_factory=lambda: [[], []])
    naive_detector: list[list[torch.Tensor]] = field(default_factory=lambda: [[], []])
    real_classifier: list[Image.Image] = field(default_factory=list)
    ours_classifier: list[list[Image.Image]] = field(default_factory=lambda: [[], []])
    naive_classifier: list[list[Image.Image]] = field(default_factory=lambda: [[], []])
    labels: list[int] = field(default_factory=list)
    changes: list[torch.Tensor] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)
    checked: int = 0
    not_in_place: list[str] = field(default_factory=list)
    naive_not_in_place: list[str] = field(default_factory=list)
    grid: list[tuple[Image.Image, ...]] = field(default_factory=list)
    seconds: float = 0.0


def thumbnail(image: Image.Image) -> Image.Image:
    """Small copy for the classifier (it squares to 64 px anyway), so hundreds of composites stay in memory."""
    small = image.copy()
    small.thumbnail((4 * FEATURE_SIZE, 4 * FEATURE_SIZE), Image.Resampling.LANCZOS)
    return small


def grid_picks(products: list[Photo], count: int) -> set[int]:
    """Indices of ``count`` products spread over the categories (round robin in file order)."""
    by_class: dict[str, list[int]] = {}
    for i, photo in enumerate(products):
        by_class.setdefault(photo.category, []).append(i)
    picks: list[int] = []
    while len(picks) < min(count, len(products)):
        for indices in by_class.values():
            if indices and len(picks) < count:
                picks.append(indices.pop(0))
    return set(picks)


def make_composites(args, products: list[Photo], generator, harmoniser, shop_backdrops: list[Image.Image]) -> CompositeSet:
    made = CompositeSet()
    picks = grid_picks(products, GRID_PRODUCTS)
    started = time.perf_counter()
    for i, photo in enumerate(products):
        # BACKDROP_SOURCES: a generated backdrop, then a window of a train photo's (never the product's own).
        backdrops = [generator.backdrops(1, args.seed + 20_000 + i)[0],
                     photo_window(shop_backdrops[i % len(shop_backdrops)], args.seed + 30_000 + i)]
        reports: list[dict] = []
        scenes = compose_product(photo, backdrops, budget_harmoniser(harmoniser, DELTA_E_BUDGET, reports), args.seed + i,
                                 args.pose)
        ours, naive = scenes["ours"], scenes["naive"]
        made.reports += reports
        made.labels.append(photo.label)
        made.real_detector.append(detector_input(photo.image))
        made.real_classifier.append(thumbnail(photo.image))
        for v in range(len(BACKDROP_SOURCES)):
            made.ours_detector[v].append(detector_input(jpeg_like_original(ours[v].image, photo.jpeg)))
            made.naive_detector[v].append(detector_input(jpeg_like_original(naive[v].image, photo.jpeg)))
            made.ours_classifier[v].append(thumbnail(ours[v].image))
            made.naive_classifier[v].append(thumbnail(naive[v].image))
        for scene in ours:
            if in_place(scene, scenes["soft"]):
                made.changes.append(harmonisation_change(scene.image, photo.image, scene.alpha))
                made.checked += 1
            else:
                made.not_in_place.append(photo.path.name)
        if not all(in_place(scene, scenes["binary"]) for scene in naive):
            made.naive_not_in_place.append(photo.path.name)
        if i in picks:
            made.grid.append((photo.image, ours[0].image, naive[0].image, ours[1].image, naive[1].image))
        if (i + 1) % 25 == 0:
            log(f"  composites: {i + 1} of {len(products)} products")
    made.seconds = time.perf_counter() - started
    return made


def composite_sheet(path: Path, rows: list[tuple[Image.Image, ...]], per_row: int = 2) -> None:
    """Products side by side, ``per_row`` a row: original | ours and naive on a generated backdrop | ours and
    naive on a shop backdrop."""
    heads = ("original", "ours, generated", "naive, generated", "ours, shop backdrop", "naive, shop backdrop")
    tile_w, tile_h = GRID_TILE
    gap, header = 4, 18
    columns = per_row * len(heads)
    lines = math.ceil(len(rows) / per_row)
    sheet = Image.new("RGB", (columns * (tile_w + gap) + gap, header + lines * (tile_h + gap) + gap), (255, 255, 255))
    pen = ImageDraw.Draw(sheet)
    for c in range(columns):
        pen.text((gap + c * (tile_w + gap) + 4, 3), heads[c % len(heads)], fill=(0, 0, 0))
    for n, images in enumerate(rows):
        line, slot = divmod(n, per_row)
        for k, image in enumerate(images):
            tile = ImageOps.pad(image, (tile_w, tile_h), method=Image.Resampling.LANCZOS, color=(255, 255, 255))
            x = gap + (slot * len(heads) + k) * (tile_w + gap)
            sheet.paste(tile, (x, header + gap + line * (tile_h + gap)))
    sheet.save(path)


def composites_section(made: CompositeSet, products: list[Photo], pose: str) -> dict[str, Any]:
    strengths = [rep["strength"] for rep in made.reports]
    qualities = sorted({estimate_quality(p.jpeg["qtables"][0]) for p in products if p.jpeg})
    return {
        "products": len(products), "scenes_per_product": 2, "naive_per_product": 2, "backdrop_sources": BACKDROP_SOURCES,
        "seconds": r(made.seconds, 1), "seconds_per_product": r(made.seconds / max(1, len(products)), 3),
        "ours": f"soft_matte + Lighting(pose={pose!r}) ({POSE_SHADOWS[pose]}) + harmonisation within ΔE "
                f"{DELTA_E_BUDGET:g} + backdrop with depth_of_field {POSE_DEPTH_OF_FIELD[pose]:g}, decontaminated edges",
        "pose": pose,
        "naive": "binary border mask (alpha >= 0.5), no lighting, no harmonisation, the same backdrops as ours, "
                 "depth_of_field 0, no decontamination",
        "backdrops": "generated: the scene GAN's EMA sampler; shop: photo_window of the empty backdrop of a train "
                     "photo (product i gets train backdrop i mod N), what a scene set of the shop's photos serves",
        "layout": "aspect original, the product in place (fill, floor and x of its own box), scale 1.0",
        "harmonisation_applied_share": r(statistics.fmean(rep["applied"] for rep in made.reports), 3) if made.reports else None,
        "harmonisation_strength_mean": r(statistics.fmean(strengths), 3) if strengths else None,
        "harmonisation_mean_delta_e": r(statistics.fmean(rep["mean_delta_e"] for rep in made.reports), 3) if made.reports else None,
        "original_jpeg_qualities": qualities,
        "ours_not_in_place": made.not_in_place, "naive_not_in_place": made.naive_not_in_place,
    }


# --- 4. the realism detector ---------------------------------------------------------------------------


class Detector(nn.Module):
    """Four stride-2 conv-BN-ReLU blocks (16..64 channels), global average pool, one logit (composite)."""

    def __init__(self) -> None:
        super().__init__()
        widths = (3, 16, 32, 64, 64)
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))[:, 0]


def detector_accuracy(real: torch.Tensor, fake: torch.Tensor, train: torch.Tensor, test: torch.Tensor, *, epochs: int, seed: int) -> float:
    """Train a fresh ``Detector`` on the real photos and composites of products ``train`` (one of each per
    product: balanced), return its accuracy on those of products ``test``."""
    def inputs(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([real[index], fake[index]]).float().div(127.5).sub(1.0)
        y = torch.cat([torch.zeros(len(index)), torch.ones(len(index))])
        return x, y

    x, y = inputs(train)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Detector()
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=DETECTOR_LR)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), DETECTOR_BATCH):
            index = order[start : start + DETECTOR_BATCH]
            if len(index) < 2:
                continue  # BatchNorm cannot train on one image
            batch = x[index]
            # Mirroring is label-preserving and doubles the few hundred images.
            flip = torch.rand(len(index), generator=generator) < 0.5
            batch = torch.where(flip[:, None, None, None], batch.flip(-1), batch)
            loss = F.binary_cross_entropy_with_logits(model(batch), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()
    test_x, test_y = inputs(test)
    with torch.inference_mode():
        predicted = model(test_x) > 0
    return float((predicted == test_y.bool()).float().mean())


def realism_section(args, made: CompositeSet) -> dict[str, Any]:
    real = torch.stack(made.real_detector)
    count = len(real)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(args.seed))
    halves = (order[: count // 2], order[count // 2 :])
    result: dict[str, Any] = {
        "products": count, "image_size": DETECTOR_SIZE, "epochs": args.detector_epochs, "batch_size": DETECTOR_BATCH,
        "lr": DETECTOR_LR, "seed": args.seed, "folds": 2,
        "method": "two-fold by product: train on one half's real photos and composites, test on the other half's, "
                  "then swapped; accuracy over both test halves (every product tested once)",
        "fair_inputs": "composites JPEG-encoded with their original's quantisation tables and subsampling, then "
                       "decoded; real photos and composites resized by the same Pillow bilinear call to 128 x 128",
    }
    with threads(args.threads):
        for v, source in enumerate(BACKDROP_SOURCES):
            entry: dict[str, Any] = {}
            for name, fakes in (("naive", made.naive_detector[v]), ("ours", made.ours_detector[v])):
                fake = torch.stack(fakes)
                folds = [
                    detector_accuracy(real, fake, halves[k], halves[1 - k], epochs=args.detector_epochs, seed=args.seed + k)
                    for k in (0, 1)
                ]
                # Both halves together: weighted by their sizes.
                accuracy = (folds[0] * len(halves[1]) + folds[1] * len(halves[0])) / count
                entry[name] = {"accuracy": r(accuracy), "fold_accuracies": [r(a) for a in folds],
                               "distance_from_chance": r(abs(accuracy - 0.5))}
                log(f"  detector vs {name} on {source} backdrops: held-out accuracy {accuracy:.3f} "
                    f"(folds {folds[0]:.3f}, {folds[1]:.3f})")
            gain = entry["naive"]["distance_from_chance"] - entry["ours"]["distance_from_chance"]
            entry["closer_to_chance_points"] = r(100 * gain, 2)
            entry["target"] = {"points": 100 * TARGET_REALISM_POINTS, "met": bool(gain >= TARGET_REALISM_POINTS)}
            result[source] = entry
    return result


# --- 5. identity ---------------------------------------------------------------------------------------


def identity_section(extractor, made: CompositeSet, test_photos: list[Photo], budget: float) -> dict[str, Any]:
    labels = torch.tensor(made.labels, dtype=torch.long)

    def accuracy(images: list[Image.Image]) -> float:
        return extractor.accuracy(stack_images(images, FEATURE_SIZE), labels)

    original = accuracy(made.real_classifier)
    scenes = [accuracy(images) for images in made.ours_classifier]
    naive = statistics.fmean(accuracy(images) for images in made.naive_classifier)
    ours = statistics.fmean(scenes)
    every_test = extractor.accuracy(stack_images([p.image for p in test_photos], FEATURE_SIZE),
                                    torch.tensor([p.label for p in test_photos], dtype=torch.long))
    changes = torch.cat(made.changes) if made.changes else torch.zeros(0)
    over = int((changes > budget).sum())
    reported = [rep["max_delta_e"] for rep in made.reports]
    return {
        "classifier_accuracy": {
            "original_products": r(original), "ours": r(ours), "ours_per_scene": [r(a) for a in scenes],
            "backdrop_sources": BACKDROP_SOURCES,
            "naive": r(naive), "all_scanned_test_photos": r(every_test), "scanned_test_photos": len(test_photos),
        },
        "delta_e_budget": budget,
        "measured": {
            "product_pixels": int(changes.numel()), "over_budget": over,
            "share_over_budget": r(over / max(1, changes.numel()), 6),
            "max_delta_e": r(changes.max(), 3) if changes.numel() else 0.0,
            "mean_delta_e": r(changes.mean(), 3) if changes.numel() else 0.0,
            "composites_checked": made.checked, "composites_not_in_place": made.not_in_place,
            "how": "CIE76 between each composite and its photo at the placed alpha-255 pixels (8-bit, after rounding)",
        },
        "harmoniser_report": {
            "composites": len(reported), "max_delta_e": r(max(reported), 3) if reported else 0.0,
            "over_budget": sum(value > budget for value in reported),
        },
        "target": {
            "classifier_met": bool(ours >= original),
            "budget_met": over == 0,
        },
    }


# --- 6. speed ------------------------------------------------------------------------------------------


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: first calls pay for allocations
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def speed_section(args, products: list[Photo], generator, harmoniser) -> dict[str, Any]:
    photo = products[0].image
    scale = args.speed_side / max(photo.size)
    big = photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.Resampling.LANCZOS)
    backdrop = generator.backdrops(1, args.seed)[0]
    # The app's defaults (square, fill 0.7, floor 0.88) on a canvas of --speed-side px.
    layout = Layout(aspect="1:1", long_side=args.speed_side)
    reports: list[dict] = []
    harmonise = budget_harmoniser(harmoniser, DELTA_E_BUDGET, reports)
    out: dict[str, Any] = {"photo_size": list(big.size), "repeats": args.speed_repeats, "load_average_before": [r(x, 2) for x in os.getloadavg()]}
    for count in sorted({args.threads, 1}, reverse=True):
        with threads(count):
            mask = mask_to_image(border_matte(big).alpha)

            def compose():
                matte = soft_matte(big, mask)
                return compose_scene(big, matte, backdrop, layout=layout, lighting=Lighting(), harmonise=harmonise,
                                     seed=0, depth_of_field=1.0)

            canvas = compose().image.size
            entry = {
                "composite_seconds": r(median_seconds(compose, args.speed_repeats), 3),
                "border_mask_seconds": r(median_seconds(lambda: border_matte(big), args.speed_repeats), 3),
                "canvas": list(canvas),
            }
            for batch in (1, 16):
                seconds = median_seconds(lambda: generator.backdrops(batch, args.seed), args.speed_repeats)
                entry[f"backdrops_per_second_batch_{batch}"] = r(batch / seconds, 2)
        out[f"threads_{count}"] = entry
        log(f"  speed at {count} thread(s): composite {entry['composite_seconds']:.2f} s, "
            f"{entry['backdrops_per_second_batch_1']:.1f} / {entry['backdrops_per_second_batch_16']:.1f} backdrops/s")
    out["load_average_after"] = [r(x, 2) for x in os.getloadavg()]
    return out


# --- report ------------------------------------------------------------------------------------------------


def yes(flag: bool) -> str:
    return "**met**" if flag else "**missed**"


def markdown(result: dict[str, Any]) -> str:
    s, d, g, h = result["settings"], result["data"], result["scene_generator"], result["harmonisation"]
    c, real, ident, sp = result["composites"], result["realism"], result["identity"], result["speed"]
    m = result["machine"]
    canvas = sp[f"threads_{s['threads']}"]["canvas"]
    per_class = f"the first {s['test_per_class']} confident per class" if s["test_per_class"] else "every confident one"
    lines = [
        f"# Product scenes ({result['date']})", "",
        f"Command: `{result['command']}`  ",
        f"Wall time: {result['wall_seconds'] / 60:.1f} min on {m['usable_cpus']} usable of {m['cpu_count']} CPUs "
        f"({m['device']}), torch {m['torch']}, {s['threads']} threads for training/detector/speed, "
        f"{s['prep_threads']} for per-photo work. Load average at start {result['load_average_start']}, "
        f"at end {result['load_average_end']}.", "",
        "## 1. Scene generator (backdrops)", "",
        f"Trained on {g['train_images']} images ({g['train_backdrops']} empty backdrops of confident train photos, "
        f"{s['image_size']} px): {g['training']['steps']} steps of batch {g['training']['batch_size']} in "
        f"{g['training']['seconds']:.0f} s (budget {s['gen_minutes']} min). Reference: {g['held_out_backdrops']} held-out "
        f"backdrops (confident test photos, centre squares). Features: catalogue classifier "
        f"{result['classifier']['version_id']} ({result['classifier']['epochs']} epochs, {result['classifier']['train_photos']} "
        f"train photos, {FEATURE_SIZE} px).", "",
        "| backdrops | N | FID ↓ | KID ↓ (± std) | precision | recall | density | coverage |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, e in g["scores"].items():
        lines.append(f"| {name} | {e['images']} | {e['fid']:.2f} | {e['kid']:.4f} ± {e['kid_std']:.4f} | "
                     f"{e['precision']:.2f} | {e['recall']:.2f} | {e['density']:.2f} | {e['coverage']:.2f} |")
    lines += ["", "FID is biased upward at these sizes and heavy feature tails weigh on it and on KID: compare rows "
              "with each other only. A generator that collapses to the reference's average can score a low FID; "
              "recall and coverage (how much of the held-out set the images reach) expose that."]
    lines += ["", f"Near copies (nearest training image closer than the {g['percentile']:g}st percentile of distances "
              "between distinct training backdrops):", "",
              "| images | N | share (features) | share (32 px thumbnails) | either |", "| --- | --- | --- | --- | --- |"]
    for name, e in g["near_copies"].items():
        lines.append(f"| {name} | {e['images']} | {e['features_share']:.1%} | {e['pixels_share']:.1%} | {e['either_share']:.1%} |")
    lines += ["", "## 2. Harmonisation (restoring a perturbed product)", "",
              f"Trained on {h['train_photos']} train photos: {h['training']['steps']} steps of batch "
              f"{h['training']['batch_size']} in {h['training']['seconds']:.0f} s (budget {s['harm_minutes']} min). "
              f"{h['test_photos']} test products (masks: {h['mask_sources']}), scored at {h['scored_at_long_side']} px.", "",
              "| method | PSNR (dB) ↑ | mean ΔE ↓ |", "| --- | --- | --- |"]
    for name, e in h["methods"].items():
        lines.append(f"| {name} | {e['psnr_db']:.2f} | {e['delta_e']:.2f} |")
    lines += ["", f"Target ours ≥ best other + {TARGET_HARMONISE_DB:g} dB: {yes(h['target']['met'])} "
              f"(margin {h['margin_over_best_other_db']:+.2f} dB).", "",
              "## 3–5. Composites, realism and identity", "",
              f"{c['products']} test products ({per_class}), "
              f"{c['scenes_per_product']} scenes each; {c['seconds_per_product']:.2f} s per product for both scenes and both "
              f"naive pastes. Ours: {c['ours']}. Naive: {c['naive']}. Layout: {c['layout']}. Harmonisation changed "
              f"{c['harmonisation_applied_share']:.0%} of the products (mean strength {c['harmonisation_strength_mean']}, "
              f"mean ΔE {c['harmonisation_mean_delta_e']}).", "",
              "| measure | original photos | naive paste | ours | target |", "| --- | --- | --- | --- | --- |",
              *[f"| detector held-out accuracy, {source} backdrops (50% = cannot tell) | — | "
                f"{real[source]['naive']['accuracy']:.1%} | {real[source]['ours']['accuracy']:.1%} | ours ≥ "
                f"{100 * TARGET_REALISM_POINTS:.0f} points closer to 50%: {yes(real[source]['target']['met'])} "
                f"({real[source]['closer_to_chance_points']:+.1f} points) |" for source in BACKDROP_SOURCES],
              f"| catalogue classifier accuracy | {ident['classifier_accuracy']['original_products']:.1%} | "
              f"{ident['classifier_accuracy']['naive']:.1%} | {ident['classifier_accuracy']['ours']:.1%} "
              f"({', '.join(f'{source} {a:.1%}' for source, a in zip(BACKDROP_SOURCES, ident['classifier_accuracy']['ours_per_scene']))}) | "
              f"ours ≥ original: {yes(ident['target']['classifier_met'])} |",
              f"| product pixels changed by more than ΔE {ident['delta_e_budget']:g} | — | — | "
              f"{ident['measured']['over_budget']} of {ident['measured']['product_pixels']} "
              f"({ident['measured']['share_over_budget']:.4%}; max {ident['measured']['max_delta_e']:.2f}, mean "
              f"{ident['measured']['mean_delta_e']:.2f}) | 0: {yes(ident['target']['budget_met'])} |", "",
              f"Detector: {real['method']}; {real['epochs']} epochs, batch {real['batch_size']}, Adam {real['lr']:g}, "
              f"seed {real['seed']}, {real['image_size']} px. Fold accuracies: "
              + "; ".join(f"{source}: naive {real[source]['naive']['fold_accuracies']}, ours {real[source]['ours']['fold_accuracies']}"
                          for source in BACKDROP_SOURCES) + f". Backdrops: {c['backdrops']}. Fair inputs: {real['fair_inputs']} (original JPEG qualities "
              f"≈ {c['original_jpeg_qualities']}).",
              f"Classifier accuracy on all {ident['classifier_accuracy']['scanned_test_photos']} scanned test photos: "
              f"{ident['classifier_accuracy']['all_scanned_test_photos']:.1%}. The harmoniser's own report: largest "
              f"change {ident['harmoniser_report']['max_delta_e']:.2f} over {ident['harmoniser_report']['composites']} "
              f"composites.", "",
              "## 6. Speed", "",
              f"One composite at {s['speed_side']} px (a test photo enlarged to {sp['photo_size']}, canvas "
              f"{canvas}, app defaults: 1:1, fill 0.7, Lighting(), harmonised, DoF 1), "
              f"median of {sp['repeats']} after a warm-up, models loaded. Load average {sp['load_average_before']}.", "",
              "| threads | composite (s) | border mask (s) | backdrops/s, batch 1 | backdrops/s, batch 16 |",
              "| --- | --- | --- | --- | --- |"]
    for key in sorted(k for k in sp if k.startswith("threads_")):
        e = sp[key]
        lines.append(f"| {key.split('_')[1]} | {e['composite_seconds']:.2f} | {e['border_mask_seconds']:.2f} | "
                     f"{e['backdrops_per_second_batch_1']:.1f} | {e['backdrops_per_second_batch_16']:.1f} |")
    lines += ["", "## Data", "",
              f"Train: {d['train_scanned']} photos scanned ({s['train_per_class']} per class), {d['train_confident']} "
              f"confident → {d['train_backdrops']} backdrops. Test: {d['test_scanned']} photos scanned, "
              f"{d['test_confident']} confident products (held-out backdrops and composites). Products are the photos the "
              "classical border model is confident about: without a trained segmenter that is what the app accepts too "
              "(product_mask). Pictures: "
              f"`{result['pictures']['composites']}` (original | ours, naive on a generated backdrop | ours, naive on a shop backdrop) and "
              f"`{result['pictures']['backdrops']}` (rows 1–2 generated, row 3 training, row 4 held-out).", ""]
    if result.get("note"):
        lines += [f"Note: {result['note']}", ""]
    return "\n".join(lines)


# --- the run -----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="dataset root holding train/ and test/ (default: %(default)s)")
    parser.add_argument("--classes", type=int, help="only the first N classes (default all)")
    parser.add_argument("--train-per-class", type=int, help="train photos scanned per class (default 40)")
    parser.add_argument("--test-per-class", type=int, help="confident test products per class (default all)")
    parser.add_argument("--gen-minutes", type=float, help="scene GAN training budget (default 6)")
    parser.add_argument("--features-minutes", type=float, help="catalogue classifier budget (default 3)")
    parser.add_argument("--harm-minutes", type=float, help="harmoniser training budget (default 4)")
    parser.add_argument("--image-size", type=int, help="scene GAN image size (default 256)")
    parser.add_argument("--samples", type=int, help="backdrops per FID/KID contender (default 256)")
    parser.add_argument("--detector-epochs", type=int, help="realism detector epochs (default 20)")
    parser.add_argument("--speed-repeats", type=int, help="timing repeats (default 5)")
    parser.add_argument("--speed-side", type=int, help="long side of the timed photo (default 1024)")
    parser.add_argument("--min-photos", type=int, help="scene set minimum (default the app's, 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pose", choices=sorted(POSE_DEPTH_OF_FIELD), default="flat",
                        help="how our composites sit the product: flat (default: the photos are flat lays and hanging "
                             "garments) or standing")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for training, the detector and speed")
    parser.add_argument("--prep-threads", type=int, default=1, help="torch threads for the per-photo work")
    parser.add_argument("--out", type=Path, help="results folder (default bench/results; --tiny: a new temporary folder)")
    parser.add_argument("--note", help="a remark stored with the results")
    parser.add_argument("--tiny", action="store_true", help="smoke run: 3 classes, a few photos, seconds, 64 px")
    args = parser.parse_args(argv)
    for key, value in (TINY if args.tiny else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix="scenes-bench-")) if args.tiny else ROOT / "bench" / "results"
    if min(args.threads, args.prep_threads, args.samples, args.detector_epochs, args.speed_repeats) < 1:
        parser.error("--threads, --prep-threads, --samples, --detector-epochs and --speed-repeats must be >= 1")
    if min(args.gen_minutes, args.features_minutes, args.harm_minutes) <= 0:
        parser.error("the minute budgets must be positive")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import datetime

    started, load_start = time.perf_counter(), os.getloadavg()
    torch.set_num_threads(args.prep_threads)
    args.out.mkdir(parents=True, exist_ok=True)
    today = datetime.date.today().isoformat()
    stem = f"{today}-scenes"
    command = " ".join([".venv/bin/python", "bench/scenes.py", *(argv if argv is not None else sys.argv[1:])])
    classes = list_classes(args.data / "train", args.classes, at_least=2)

    log("scanning the train split with the border model")
    train_photos, train_counts = scan_split(args.data / "train", classes, per_class=args.train_per_class, stop_at_confident=False)
    log("scanning the test split with the border model")
    test_photos, test_counts = scan_split(args.data / "test", classes, per_class=args.test_per_class, stop_at_confident=True)
    train_confident = [p for p in train_photos if p.confident]
    products = [p for p in test_photos if p.confident]
    if len(products) < 4:
        raise SystemExit(f"only {len(products)} confident test photos: too few for the benchmark")
    log(f"{len(train_confident)} of {len(train_photos)} train and {len(products)} of {len(test_photos)} test photos confident")
    log("empty backdrops (classical fill)")
    train_backdrops, test_backdrops = backdrops_of(train_confident), backdrops_of(products)
    shop_backdrops = list(train_backdrops)

    log("catalogue classifier")
    with threads(args.threads):
        extractor, classifier = train_catalogue_classifier(args.data / "train", classes, args.features_minutes, args.seed)

    log("1. scene generator")
    backdrop_png = args.out / f"{stem}-backdrops.png"
    generator, generator_section = scene_generator_section(args, extractor, train_backdrops, test_backdrops, backdrop_png)
    del train_backdrops, test_backdrops

    log("2. harmonisation")
    harmoniser, harmonise_section = harmonisation_section(args, train_photos, products)
    del train_photos

    log("3. composites")
    made = make_composites(args, products, generator, harmoniser, shop_backdrops)
    del shop_backdrops
    composite_png = args.out / f"{stem}.png"
    composite_sheet(composite_png, made.grid)
    composites = composites_section(made, products, args.pose)

    log("4. realism detector")
    realism = realism_section(args, made)
    log("5. identity")
    identity = identity_section(extractor, made, test_photos, DELTA_E_BUDGET)
    log(f"  classifier: originals {identity['classifier_accuracy']['original_products']:.3f}, "
        f"ours {identity['classifier_accuracy']['ours']:.3f}; pixels over budget {identity['measured']['over_budget']}")
    log("6. speed")
    speed = speed_section(args, products, generator, harmoniser)

    result = {
        "date": today, "command": command, "wall_seconds": r(time.perf_counter() - started, 1),
        "load_average_start": [r(x, 2) for x in load_start], "load_average_end": [r(x, 2) for x in os.getloadavg()],
        "machine": {**machine(args.threads), "device": f"cpu ({os.cpu_count()} cores, no GPU used)"},
        "settings": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()},
        "data": {
            "classes": classes, "train_scanned": sum(v["scanned"] for v in train_counts.values()),
            "train_confident": len(train_confident), "train_backdrops": generator_section["train_backdrops"],
            "test_scanned": len(test_photos), "test_confident": len(products),
            "train_per_class": train_counts, "test_per_class": test_counts,
            "products": [f"{p.category}/{p.path.name}" for p in products],
        },
        "classifier": classifier,
        "scene_generator": generator_section,
        "harmonisation": harmonise_section,
        "composites": composites,
        "realism": realism,
        "identity": identity,
        "speed": speed,
        "pictures": {"composites": composite_png.name, "backdrops": backdrop_png.name},
        "note": args.note,
    }
    result["targets"] = {
        "harmonisation_+1_db": harmonise_section["target"]["met"],
        **{f"realism_15_points_closer_to_chance_{source}_backdrops": realism[source]["target"]["met"]
           for source in BACKDROP_SOURCES},
        "identity_classifier_at_least_original": identity["target"]["classifier_met"],
        "identity_no_pixel_over_budget": identity["target"]["budget_met"],
    }
    import json

    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    table = markdown(result)
    (args.out / f"{stem}.md").write_text(table)
    print(table, flush=True)
    log(f"wrote {args.out / stem}.json, .md, .png and -backdrops.png in {result['wall_seconds'] / 60:.1f} min")
    return result


if __name__ == "__main__":
    main()
