"""Training throughput of our GAN trainer against the textbook DCGAN loop, and generation latency.

One run on one machine, results as ratios against the baseline measured in the same run:

    .venv/bin/python bench/throughput.py [--data ../shared/data/clothing-dataset-small] [--steps 30]

The reference is pytorch/examples' dcgan/main.py as written: ImageFolder with a per-step JPEG decode
(Resize, CenterCrop, ToTensor, Normalize) through a DataLoader, ngf = ndf = 64, nz = 100, BCE on sigmoid
outputs, Adam(2e-4, betas 0.5/0.999), batch 64 (bench/reference_dcgan.py). Ours: mlcore.trainer.Trainer with its defaults (photos
decoded once into a uint8 tensor, DiffAugment, hinge loss, spectral norm, EMA) at the same batch size.
Results go to bench/results/<date>-throughput.json and .md.
"""
import argparse
import datetime
import json
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mlcore  # noqa: E402  (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402

from mlcore.config import GANConfig  # noqa: E402
from mlcore.data import load_image, stack_images  # noqa: E402
from mlcore.sampler import Sampler  # noqa: E402
from mlcore.trainer import Trainer  # noqa: E402

from bench.reference_dcgan import (  # noqa: E402
    BATCH,
    ReferenceDCGAN,
    endless,
    reference_dataset,
    reference_loader,
    textbook_steps,
)


def reference_throughput(train_dir: Path, steps: int, warmup: int = 3) -> dict:
    torch.manual_seed(0)
    loader = reference_loader(reference_dataset(train_dir))
    model = ReferenceDCGAN()
    batches = endless(loader)
    textbook_steps(model, batches, warmup)
    start = time.perf_counter()
    textbook_steps(model, batches, steps)
    seconds = time.perf_counter() - start
    batches.close()
    return {"steps": steps, "seconds": round(seconds, 2), "images_per_second": round(steps * BATCH / seconds, 1)}


def load_split(split_dir: Path, size: int = 64):
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    images, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted((split_dir / name).glob("*.jpg")):
            images.append(load_image(path))
            labels.append(index)
    return stack_images(images, size), torch.tensor(labels), classes


def our_throughput(train_dir: Path, steps: int, warmup: int = 3) -> tuple[dict, Trainer]:
    started = time.perf_counter()
    images, labels, classes = load_split(train_dir)
    decode_seconds = time.perf_counter() - started
    trainer = Trainer(GANConfig(classes=classes), images, labels, batch_size=BATCH, seed=0)
    trainer.fit(warmup)
    summary = trainer.fit(steps)
    return {
        "steps": steps,
        "seconds": round(summary["seconds"], 2),
        "images_per_second": round(summary["images_per_second"], 1),
        "one_time_decode_seconds": round(decode_seconds, 2),
        "photos": len(images),
    }, trainer


def _latency_in_child(checkpoint: bytes, runs: int, queue) -> None:
    """Runs in a fresh process so its peak memory is generation's alone (plus torch itself)."""
    import io

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sampler = Sampler.from_checkpoint(io.BytesIO(checkpoint))
    name = sampler.classes[0]
    sampler.generate_seeds(name, list(range(16)))  # warm-up
    timings = []
    for run in range(runs):
        start = time.perf_counter()
        sampler.generate_seeds(name, list(range(run * 16, run * 16 + 16)))
        timings.append((time.perf_counter() - start) * 1000)
    params = sum(p.numel() for p in sampler.generator.parameters())
    queue.put({
        "batch": 16,
        "image_size": 64,
        "median_ms": round(statistics.median(timings), 1),
        "p90_ms": round(sorted(timings)[int(0.9 * runs) - 1], 1),
        "generator_parameters": params,
        "generator_weights_mb": round(params * 4 / 2**20, 2),
        "rss_after_import_mb": round(base / 1024, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    })


def generation_latency(trainer: Trainer, runs: int = 20) -> dict:
    import io
    import multiprocessing

    buffer = io.BytesIO()
    trainer.save(buffer)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_latency_in_child, args=(buffer.getvalue(), runs, queue))
    child.start()
    result = queue.get(timeout=300)
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/clothing-dataset-small")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    train_dir = args.data / "train"
    reference = reference_throughput(train_dir, args.steps)
    ours, trainer = our_throughput(train_dir, args.steps)
    latency = generation_latency(trainer)
    today = datetime.date.today().isoformat()
    result = {
        "date": today,
        "device": f"CPU, {torch.get_num_threads()} threads ({platform.machine()}), no GPU",
        "torch": torch.__version__,
        "mlcore": mlcore.__version__,
        "batch_size": BATCH,
        "reference_dcgan": reference,
        "ours_cgan": ours,
        "speedup": round(ours["images_per_second"] / reference["images_per_second"], 2),
        "generation_latency": latency,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{today}-throughput.json").write_text(json.dumps(result, indent=2) + "\n")
    table = [
        f"# Training throughput and generation latency ({today}, {result['device']})",
        "",
        "| loop | images/s (batch 64, 64 px) | ratio |",
        "| --- | --- | --- |",
        f"| textbook DCGAN (ImageFolder, per-step JPEG decode, ngf=ndf=64) | {reference['images_per_second']} | 1.00 |",
        f"| mlcore cgan trainer (decoded once, DiffAugment, SN, EMA, width 32) | {ours['images_per_second']} | {result['speedup']} |",
        "",
        f"Generation of 16 images at 64 px on the CPU: median {latency['median_ms']} ms, p90 {latency['p90_ms']} ms; "
        f"generator {latency['generator_weights_mb']} MB of weights; the generating process peaked at "
        f"{latency['peak_rss_mb']} MB RSS, {latency['rss_after_import_mb']} MB of it torch and Python before loading.",
        "",
        "The ratio mixes two things: our loop decodes the photos once and keeps them as a uint8 tensor (the",
        "reference decodes every JPEG at every step), and our networks are narrower (base width 32 against",
        "DCGAN's 64, about a quarter of the convolution FLOPs) while adding spectral norm, DiffAugment and EMA.",
        "",
        "Command: `.venv/bin/python bench/throughput.py` (train split of ../shared/data/clothing-dataset-small).",
    ]
    (out / f"{today}-throughput.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
