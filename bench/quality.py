"""Image quality of every generator kind after the same wall-clock training budget, against the textbook DCGAN.

One run on one machine. The full run takes the budget times the number of kinds (6 x 20 min with ddpm and
tcgan registered) plus, estimated, 15-25 min of decoding, feature extractor, CAS classifiers and metrics on
2 cores, plus sampling (ddpm's denoising loop took ~1.5 s per image in a smoke run: ~12 min for 500):

    .venv/bin/python bench/quality.py --minutes 20 --threads 2 --per-class 50 \\
        --data ../shared/data/clothing-dataset-small

Smoke run (every code path, 3 classes, seconds per kind): ``.venv/bin/python bench/quality.py --quick --out /tmp/q``.

Data: the train split trains the generators and the frozen feature extractor; the test split is what they are
measured against. Each split is decoded once at --image-size (mlcore.data: padded to square, never cropped).
Each training photo gets the conditions the demo shop would give it: category = folder, colour = dominant
colour, text = product name + description as shop/services/demo_catalogue.py writes them.

Contenders, each trained for --minutes of wall clock from seed 0 with torch.set_num_threads(--threads):
- "reference": pytorch/examples' dcgan/main.py as written (bench/reference_dcgan.py): its own loop, batch 64,
  per-step JPEG decode of the same training photos (Resize + CenterCrop, as written), unconditional;
- every kind of mlcore.registry (cgan, vae, cvae, ...): config.for_training, trainer at batch 32,
  trainer.fit(10**9, max_seconds=budget), sampled from its saved checkpoint like the app does.

Samples: --per-class per class from fixed seeds (class i uses seeds i*per_class ... (i+1)*per_class - 1); the
unconditional reference draws per_class x classes images. Metrics (mlcore.metrics, the app's feature
extractor: 15 epochs on the train split, frozen): classifier-FID, KID, precision/recall, density/coverage,
pooled over classes; per-category metrics for conditional kinds; near copies of training photos (feature
space, as the app checks, plus the pixel-space second opinion); FID relative to the reference (target <= 0.6);
CAS for conditional kinds. Results: <out>/<date>-quality[-tag].json and .md. Evaluation time is not part of
the budget.
"""
from __future__ import annotations

import argparse
import io
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import DATA, IMAGE_SUFFIXES, fill_defaults, list_classes, log, start_run, write_results  # noqa: E402

import mlcore  # noqa: E402  (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from mlcore.conditioning.colour import dominant_colour_name  # noqa: E402
from mlcore.data import load_image, stack_images  # noqa: E402
from mlcore.metrics.features import train_feature_extractor  # noqa: E402
from mlcore.metrics.memorization import flag_near_copies, pixel_near_copies  # noqa: E402
from mlcore.metrics.report import evaluate  # noqa: E402
from mlcore.registry import KINDS, get_kind  # noqa: E402
from mlcore.gan.sampler import tensor_to_images  # noqa: E402
from shop.services.demo_catalogue import MAX_SIDE as DEMO_MAX_SIDE, describe_product  # noqa: E402  (no Django needed)

from bench import reference_dcgan  # noqa: E402

REFERENCE = "reference"
PREFERRED_ORDER = (REFERENCE, "cgan", "vae", "cvae")
TARGET_RATIO = 0.6
OUR_BATCH = 32
SEED = 0
# Samples per (class, colour) request in the colour-match measurement.
COLOUR_SAMPLES = 6
# What the app trains its feature extractor with (imagegen.services.evaluation.train_feature_extractor).
APP_EXTRACTOR_EPOCHS = 15
CLASSIFIER_BATCH = 32
# --quick: every code path in well under two minutes on two cores.
QUICK = {
    "classes": 3, "train_per_class": 24, "test_per_class": 10, "minutes": 0.05, "per_class": 8, "extractor_epochs": 1,
}
FULL = {
    "classes": None, "train_per_class": None, "test_per_class": None, "minutes": 20.0, "per_class": 50,
    "extractor_epochs": APP_EXTRACTOR_EPOCHS,
}





# --- data ------------------------------------------------------------------------------------------------

def product_text(category: str, colour: str) -> str:
    """Name and description of the demo product made from a photo, joined as the app joins product text."""
    described = describe_product(category, colour, stem="")
    return f"{described['name']} {described['description']}"


def demo_colour(image) -> str:
    small = image.copy()
    small.thumbnail((DEMO_MAX_SIDE, DEMO_MAX_SIDE), Image.Resampling.LANCZOS)
    return dominant_colour_name(small)


@dataclass
class Split:
    images: torch.Tensor  # uint8 N x 3 x S x S
    labels: torch.Tensor  # long N
    classes: list[str]
    paths: list[Path]
    attributes: list[dict[str, str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        return [self.classes[int(i)] for i in self.labels]


def load_split(split_dir: Path, classes: list[str], size: int, per_class: int | None, *, conditions: bool) -> Split:
    """Decode every photo of ``classes`` under ``split_dir`` once (the first ``per_class`` of each, sorted)."""
    pictures, labels, paths, attributes, texts = [], [], [], [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for path in files[:per_class] if per_class else files:
            picture = load_image(path)
            pictures.append(picture)
            labels.append(index)
            paths.append(path)
            if conditions:
                colour = demo_colour(picture)
                attributes.append({"colour": colour})
                texts.append(product_text(name, colour))
    if not pictures:
        raise SystemExit(f"no photos of {', '.join(classes)} under {split_dir}")
    return Split(stack_images(pictures, size), torch.tensor(labels, dtype=torch.long), classes, paths, attributes, texts)


# --- contenders: one interface, so every kind is trained, sampled and measured by the same code ------------


class OurKind:
    """A kind of mlcore.registry, built and trained the way the app trains it."""

    def __init__(self, name: str, train: Split, image_size: int) -> None:
        self.name = name
        self.spec = get_kind(name)
        config = self.spec.config.for_training(
            classes=train.classes, image_size=image_size, attributes=train.attributes, texts=train.texts
        )
        labels = config.condition_ids(train.categories, train.attributes, train.texts)
        self.conditional = bool(getattr(config, "conditional", True))
        self.batch_size = OUR_BATCH
        self.trainer = self.spec.trainer(config, train.images, labels, batch_size=OUR_BATCH, seed=SEED)
        self.checkpoint_bytes = 0
        self.sample_steps: int | None = None

    def fit(self, max_seconds: float, progress) -> dict[str, Any]:
        summary = self.trainer.fit(10**9, max_seconds=max_seconds, callback=lambda step, _total, losses: progress(step, losses))
        return {key: summary[key] for key in ("steps_done", "step", "seconds", "images_per_second", "stopped", "losses")}

    def sample(self, classes: list[str], per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class`` images per class from the saved checkpoint, class i from seeds i*per_class onwards."""
        buffer = io.BytesIO()
        self.trainer.save(buffer)
        self.checkpoint_bytes = len(buffer.getvalue())
        sampler = self.spec.sampler.from_checkpoint(io.BytesIO(buffer.getvalue()))
        if self.sample_steps and hasattr(sampler, "sample_steps"):
            sampler.sample_steps = self.sample_steps
        self.sampler = sampler
        pictures, labels = [], []
        for index, name in enumerate(classes):
            pictures += sampler.generate_seeds(name, [index * per_class + i for i in range(per_class)])
            labels += [index] * per_class
        size = self.trainer.config.image_size
        return stack_images(pictures, size), torch.tensor(labels, dtype=torch.long)


    def colour_match(self, train: Split, per_pair: int = COLOUR_SAMPLES) -> dict[str, Any]:
        """How often a sample has the colour its product text asks for ("Red skirt. A red skirt from ...").

        Every kind gets the same requests: the 3 commonest colours of each class in the train split, with the
        demo catalogue's text and colour attribute. Kinds that ignore text give the rate by chance, which is
        the baseline for the text-conditioned ones."""
        asked = matched = 0
        pairs = {}
        for index, name in enumerate(train.classes):
            colours = [a["colour"] for a, c in zip(train.attributes, train.categories) if c == name]
            for colour in sorted(set(colours), key=lambda c: (-colours.count(c), c))[:3]:
                seeds = [10_000 + index * 100 + i for i in range(per_pair)]
                images = self.sampler.generate_for(
                    seeds, category=name, attributes={"colour": colour}, text=product_text(name, colour)
                )
                hits = sum(demo_colour(image) == colour for image in images)
                pairs[f"{colour} {name}"] = hits / per_pair
                asked, matched = asked + per_pair, matched + hits
        return {"rate": matched / asked if asked else None, "samples": asked, "by_request": pairs}


class Reference:
    """The textbook DCGAN loop on the same training photos, decoded per step from the JPEGs."""

    name = REFERENCE
    conditional = False
    batch_size = reference_dcgan.BATCH

    def __init__(self, train_dir: Path, train: Split, image_size: int) -> None:
        self.loader = reference_dcgan.reference_loader(reference_dcgan.reference_dataset(train_dir, train.paths))
        self.model = reference_dcgan.ReferenceDCGAN()
        self.checkpoint_bytes = None  # no checkpoint format of its own

    def fit(self, max_seconds: float, progress) -> dict[str, Any]:
        return self.model.fit(self.loader, max_seconds=max_seconds, callback=progress)

    def sample(self, classes: list[str], per_class: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``per_class * len(classes)`` unconditional images (labels -1: no class)."""
        count = per_class * len(classes)
        pictures = tensor_to_images(self.model.generate(count, seed=SEED))
        return stack_images(pictures, reference_dcgan.IMAGE_SIZE), torch.full((count,), -1, dtype=torch.long)


def build(name: str, train_dir: Path, train: Split, image_size: int):
    torch.manual_seed(SEED)
    if name == REFERENCE:
        return Reference(train_dir, train, image_size)
    return OurKind(name, train, image_size)


def cpu_seconds() -> tuple[float, float]:
    """(this process's CPU seconds, CPU seconds of its finished children, e.g. DataLoader workers)."""
    times = os.times()
    return time.process_time(), times.children_user + times.children_system


def train_contender(name: str, train_dir: Path, train: Split, args) -> tuple[Any, dict[str, Any]]:
    """Build and train one contender for the budget; its summary with wall clock and CPU time."""
    started = time.perf_counter()
    contender = build(name, train_dir, train, args.image_size)
    setup_seconds = time.perf_counter() - started
    budget = args.minutes * 60
    every = max(5.0, budget / 10)
    last = [time.perf_counter()]

    def progress(step: int, losses: dict[str, float]) -> None:
        if time.perf_counter() - last[0] >= every:
            last[0] = time.perf_counter()
            terms = " ".join(f"{key} {value:.3f}" for key, value in list(losses.items())[:4])
            log(f"  {name}: step {step}, {terms}")

    load_before = os.getloadavg()
    cpu_before, children_before = cpu_seconds()
    wall_before = time.perf_counter()
    summary = contender.fit(budget, progress)
    wall = time.perf_counter() - wall_before
    cpu_after, children_after = cpu_seconds()
    cpu, children = cpu_after - cpu_before, children_after - children_before
    result = {
        "batch_size": contender.batch_size,
        "budget_seconds": budget,
        "setup_seconds": round(setup_seconds, 2),
        "steps": summary["steps_done"],
        "seconds": round(summary["seconds"], 2),
        "wall_seconds": round(wall, 2),
        "images_per_second": round(summary["images_per_second"], 2),
        "process_cpu_seconds": round(cpu, 2),
        "children_cpu_seconds": round(children, 2),
        # CPU seconds per wall second: about --threads when the run had the cores to itself.
        "cores_busy": round((cpu + children) / wall, 2) if wall > 0 else None,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "stopped": summary["stopped"],
        "final_losses": {key: round(float(value), 4) for key, value in summary["losses"].items()},
    }
    return contender, result


# --- metrics ---------------------------------------------------------------------------------------------


@dataclass
class Judge:
    """What every contender is measured with: the frozen extractor, the test split, the train split's features."""

    extractor: Any
    train: Split
    test: Split
    train_features: torch.Tensor
    epochs: int

    def classifier_accuracy(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Test accuracy of the extractor's classifier (same architecture, epochs, seed) trained on ``images``."""
        classifier = train_feature_extractor(
            images, labels, self.test.classes, image_size=self.extractor.image_size, epochs=self.epochs,
            batch_size=CLASSIFIER_BATCH, seed=SEED,
        )
        return classifier.accuracy(self.test.images, self.test.labels)

    def measure(self, fakes: torch.Tensor, fake_labels: torch.Tensor, conditional: bool) -> dict[str, Any]:
        report = evaluate(self.extractor, self.test.images, self.test.labels, fakes, fake_labels, self.test.classes, seed=SEED)
        if not conditional:
            report["per_category"] = {"note": "not class-conditional: no per-category metrics"}
        copies = flag_near_copies(self.extractor.features(fakes), self.train_features).to_dict()
        pixel = pixel_near_copies(fakes, self.train.images).to_dict()
        report["near_copies"] = {key: copies[key] for key in ("flagged", "threshold", "flagged_indices")}
        report["pixel_near_copies"] = {key: pixel[key] for key in ("flagged", "threshold", "flagged_indices")}
        if conditional:
            # CAS (classification_accuracy_score): the extractor is the same classifier trained on the real
            # train split, so its test accuracy is the real-data side, computed once.
            cas = self.classifier_accuracy(fakes, fake_labels)
            real = self.extractor.summary["test_accuracy"]
            report["cas"] = {"cas": cas, "real_accuracy": real, "gap": real - cas, "epochs": self.epochs}
        return report


def make_judge(train: Split, test: Split, image_size: int, epochs: int) -> Judge:
    extractor = train_feature_extractor(
        train.images, train.labels, train.classes, image_size=image_size, epochs=epochs,
        batch_size=CLASSIFIER_BATCH, seed=SEED,
    )
    extractor.summary["test_accuracy"] = extractor.accuracy(test.images, test.labels)
    return Judge(extractor, train, test, extractor.features(train.images), epochs)


def save_sample_grid(path: Path, fakes: torch.Tensor, labels: torch.Tensor, classes: list[str], columns: int = 8) -> None:
    from torchvision.utils import save_image

    rows = [fakes[labels == i][:columns] for i in range(len(classes))] if (labels >= 0).any() else [fakes[: columns * len(classes)]]
    grid = torch.cat([r for r in rows if len(r)]).float().div(255)
    save_image(grid, path, nrow=columns, padding=1)


# --- the run ---------------------------------------------------------------------------------------------


def run_kind(name: str, judge: Judge, train_dir: Path, args, out_stem: Path | None) -> dict[str, Any]:
    log(f"{name}: training for {args.minutes * 60:.0f} s")
    contender, training = train_contender(name, train_dir, judge.train, args)
    log(f"{name}: {training['steps']} steps, {training['images_per_second']} img/s, "
        f"{training['process_cpu_seconds'] + training['children_cpu_seconds']:.0f} CPU s in {training['wall_seconds']:.0f} s")
    started = time.perf_counter()
    if isinstance(contender, OurKind):
        contender.sample_steps = args.sample_steps
    fakes, fake_labels = contender.sample(judge.test.classes, args.per_class)
    sampling_seconds = time.perf_counter() - started
    if out_stem is not None:
        save_sample_grid(out_stem.with_name(f"{out_stem.name}-{name}.png"), fakes, fake_labels, judge.test.classes)
    metrics = judge.measure(fakes, fake_labels, contender.conditional)
    if isinstance(contender, OurKind):
        metrics["colour_match"] = contender.colour_match(judge.train)
    overall = metrics["overall"]
    log(f"{name}: FID {overall['fid']:.4g}, KID {overall['kid_mean']:.4f}, "
        f"near copies {metrics['near_copies']['flagged']}"
        + (f", CAS {metrics['cas']['cas']:.3f}" if "cas" in metrics else ""))
    return {
        "kind": name,
        "conditional": contender.conditional,
        "training": training,
        "checkpoint_bytes": contender.checkpoint_bytes,
        "samples": len(fakes),
        "sampling_seconds": round(sampling_seconds, 2),
        "evaluation_seconds": round(time.perf_counter() - started - sampling_seconds, 2),
        "metrics": metrics,
    }


def add_ratios(results: list[dict[str, Any]]) -> None:
    reference = next((r for r in results if r["kind"] == REFERENCE), None)
    for result in results:
        if reference is None or result["kind"] == REFERENCE:
            result["fid_ratio"] = None
            result["meets_target"] = None
            continue
        ratio = result["metrics"]["overall"]["fid"] / reference["metrics"]["overall"]["fid"]
        result["fid_ratio"] = ratio
        result["meets_target"] = bool(ratio <= TARGET_RATIO)


def machine() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "mlcore": mlcore.__version__,
        "threads": torch.get_num_threads(),
        "device": "cpu",
    }


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    settings, extractor = result["settings"], result["feature_extractor"]
    lines = [
        f"# Image quality after {fmt(settings['minutes'], 2)} min of training per kind ({result['date']})",
        "",
        "| kind | steps | img/s | FID | FID/ref | KID | precision | recall | density | coverage | near copies | CAS (real acc) | colour match |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["kinds"]:
        m, t = r["metrics"]["overall"], r["training"]
        cas = r["metrics"].get("cas")
        lines.append(
            f"| {r['kind']} | {t['steps']} | {fmt(t['images_per_second'], 1)} | {m['fid']:.4g} | {fmt(r['fid_ratio'])} "
            f"| {m['kid_mean']:.4f} ± {m['kid_std']:.4f} | {fmt(m['precision'])} | {fmt(m['recall'])} "
            f"| {fmt(m['density'])} | {fmt(m['coverage'])} | {r['metrics']['near_copies']['flagged']}/{r['samples']} "
            f"| {fmt(cas['cas']) + ' (' + fmt(cas['real_accuracy']) + ')' if cas else '—'} "
            f"| {fmt(r['metrics']['colour_match']['rate']) if 'colour_match' in r['metrics'] else '—'} |"
        )
    m = result["machine"]
    lines += [
        "",
        f"Setup: {m['platform']}, {m['usable_cpus']} usable of {m['cpu_count']} CPUs, torch {m['torch']} on the CPU "
        f"with {m['threads']} threads; {settings['minutes']} min of wall clock per kind from seed {SEED}; ours at batch "
        f"{OUR_BATCH}, the textbook DCGAN (pytorch/examples dcgan/main.py, per-step JPEG decode, CenterCrop) at batch "
        f"{reference_dcgan.BATCH}. Data: {result['data']['train_images']} train / {result['data']['test_images']} test "
        f"photos of {len(result['data']['classes'])} classes at {settings['image_size']} px.",
        f"Metrics on the test split with the frozen feature extractor {extractor['version_id']} "
        f"({extractor['epochs']} epochs on the train split, test accuracy {fmt(extractor['test_accuracy'], 3)}); "
        f"{settings['per_class']} samples per class (the reference: as many unconditional samples); FID, KID, "
        "precision/recall and density/coverage pooled over classes. Near copies: generated images closer to a "
        "training photo in feature space than 99% of training photos are to their nearest other one. CAS: test "
        "accuracy of the same classifier trained on the generated images (in brackets: trained on the real photos). "
        "Colour match: share of samples whose dominant colour is the one their product text and colour attribute "
        "ask for (3 commonest colours per class); kinds that read no text show the rate by chance.",
        "",
        f"Target FID <= {TARGET_RATIO} x the reference's:",
    ]
    for r in result["kinds"]:
        if r["kind"] == REFERENCE:
            continue
        if r["fid_ratio"] is None:
            lines.append(f"- {r['kind']}: no reference in this run")
        else:
            verdict = "met" if r["meets_target"] else "not met"
            lines.append(f"- {r['kind']}: {verdict} ({fmt(r['fid_ratio'])} x)")
    lines += [
        "",
        "CPU seconds per wall second during training (about the thread count when nothing else ran): "
        + ", ".join(f"{r['kind']} {fmt(r['training']['cores_busy'])}" for r in result["kinds"]) + ". "
        "Seconds to generate the samples (not part of the budget): "
        + ", ".join(f"{r['kind']} {fmt(r['sampling_seconds'], 1)}" for r in result["kinds"]) + ".",
        "",
        f"Command: `{result['command']}`",
    ]
    return "\n".join(lines) + "\n"


def default_kinds() -> list[str]:
    return [REFERENCE] + [k for k in PREFERRED_ORDER[1:] if k in KINDS] + [k for k in KINDS if k not in PREFERRED_ORDER]


def parse_kinds(text: str | None) -> list[str]:
    if not text:
        return default_kinds()
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = [REFERENCE, *KINDS]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(known)}")
    if len(set(names)) != len(names):
        raise ValueError(f"--kinds names a kind twice: {text}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA,
                        help="dataset root holding train/ and test/ (default: %(default)s)")
    parser.add_argument("--kinds", help=f"comma-separated, in this order (default: {','.join(default_kinds())})")
    parser.add_argument("--minutes", type=float, help="wall-clock training budget per kind (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--per-class", type=int, help="generated images per class (default 50)")
    parser.add_argument("--extractor-epochs", type=int,
                        help=f"feature extractor and CAS classifier epochs (default {APP_EXTRACTOR_EPOCHS}, as the app)")
    parser.add_argument("--classes", type=int, help="use only the first N classes (default all)")
    parser.add_argument("--train-per-class", type=int, help="at most N training photos per class (default all)")
    parser.add_argument("--test-per-class", type=int, help="at most N test photos per class (default all)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder (default %(default)s)")
    parser.add_argument("--tag", help="appended to the result files' stem")
    parser.add_argument("--sample-steps", type=int,
                        help="denoising steps when sampling diffusion kinds (default: the model config's)")
    parser.add_argument("--samples", action="store_true", help="also write a PNG grid of each kind's samples")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 classes, few photos, seconds per kind")
    args = parser.parse_args(argv)
    fill_defaults(args, QUICK, FULL)
    try:
        args.kinds = parse_kinds(args.kinds)
    except ValueError as exc:
        parser.error(str(exc))
    if REFERENCE in args.kinds and args.image_size != reference_dcgan.IMAGE_SIZE:
        parser.error(f"the reference DCGAN is {reference_dcgan.IMAGE_SIZE} px only; use --image-size 64 or leave out {REFERENCE!r}")
    if args.minutes <= 0 or args.per_class < 1 or args.threads < 1 or args.extractor_epochs < 1:
        parser.error("--minutes, --per-class, --threads and --extractor-epochs must be positive")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    today, stem, command = start_run(args, "quality", argv)
    log(f"kinds {', '.join(args.kinds)}; {args.minutes} min each on {args.threads} threads")

    train_dir, test_dir = args.data / "train", args.data / "test"
    classes = list_classes(train_dir, args.classes, at_least=2)
    train = load_split(train_dir, classes, args.image_size, args.train_per_class, conditions=True)
    test = load_split(test_dir, classes, args.image_size, args.test_per_class, conditions=False)
    log(f"decoded {len(train.images)} train and {len(test.images)} test photos of {len(classes)} classes")

    judge = make_judge(train, test, args.image_size, args.extractor_epochs)
    extractor = judge.extractor
    log(f"feature extractor {extractor.version_id}: {args.extractor_epochs} epochs, "
        f"test accuracy {extractor.summary['test_accuracy']:.3f}")

    kinds = [run_kind(name, judge, train_dir, args, args.out / stem if args.samples else None) for name in args.kinds]
    add_ratios(kinds)
    result = {
        "date": today,
        "command": command,
        "machine": machine(),
        "settings": {
            "kinds": args.kinds, "minutes": args.minutes, "threads": args.threads, "image_size": args.image_size,
            "per_class": args.per_class, "seed": SEED, "our_batch_size": OUR_BATCH,
            "reference_batch_size": reference_dcgan.BATCH, "extractor_epochs": args.extractor_epochs,
            "quick": args.quick, "target_fid_ratio": TARGET_RATIO, "sample_steps": args.sample_steps,
        },
        "data": {
            "root": str(args.data), "classes": classes, "train_images": len(train.images), "test_images": len(test.images),
            "train_per_class": args.train_per_class, "test_per_class": args.test_per_class,
            "colours": {c: sum(a["colour"] == c for a in train.attributes) for c in sorted({a["colour"] for a in train.attributes})},
            "example_texts": sorted(set(train.texts))[:5],
        },
        "feature_extractor": {
            "version_id": extractor.version_id, "content_hash": extractor.content_hash, "epochs": args.extractor_epochs,
            "train_accuracy": extractor.summary["train_accuracy"], "test_accuracy": extractor.summary["test_accuracy"],
            "feature_dim": extractor.feature_dim,
        },
        "kinds": kinds,
    }
    write_results(args.out, stem, result, markdown(result))
    return result


if __name__ == "__main__":
    main()
