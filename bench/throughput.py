"""Training throughput of our GAN trainer against the textbook DCGAN loop, and generation latency.

One run on one machine, results as ratios against the baseline measured in the same run:

    .venv/bin/python bench/throughput.py [--data ../shared/data/clothing-dataset-small] [--steps 30] [--device auto]

The reference is pytorch/examples' dcgan/main.py as written: ImageFolder with a per-step JPEG decode
(Resize, CenterCrop, ToTensor, Normalize) through a DataLoader, ngf = ndf = 64, nz = 100, BCE on sigmoid
outputs, Adam(2e-4, betas 0.5/0.999), batch 64 (bench/reference_dcgan.py). Ours: mlcore.training.trainer.Trainer with its defaults (photos
decoded once into a uint8 tensor, DiffAugment, hinge loss, spectral norm, EMA) at the same batch size.
Both loops run on --device (CUDA when present); the report gives each loop's model FLOP utilisation (MFU: FLOPs
of one step counted by PyTorch, times steps per second, against the device's peak), how busy the device was,
and how long the training set takes to get ready with and without the decoded-photo cache.
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

from mlcore.gan.config import GANConfig  # noqa: E402
from mlcore.devices import resolve_device  # noqa: E402
from mlcore.photo_cache import DecodedPhotoCache, decode_cached  # noqa: E402
from mlcore.gan.sampler import Sampler  # noqa: E402
from mlcore.training.trainer import Trainer  # noqa: E402

from bench.common import timed  # noqa: E402
from bench.reference_dcgan import (  # noqa: E402
    BATCH,
    ReferenceDCGAN,
    endless,
    reference_dataset,
    reference_loader,
    textbook_steps,
)


def step_flops(step) -> int:
    """FLOPs of one call of ``step`` (forward and backward matmuls and convolutions), as PyTorch counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def peak_flops(device: torch.device) -> tuple[float, str]:
    """The FLOP/s that model FLOP utilisation is measured against, and where the figure comes from.

    A GPU's is its datasheet's dense peak for the precision the step runs in; a CPU has no such figure
    that this process can trust, so its peak is what one large fp32 matrix multiply reaches here."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (tflops, label) in GPU_PEAKS.items():
            if key in name:
                return tflops * 1e12, f"{name}: {label}"
        return float("nan"), f"{name}: no datasheet peak known to this benchmark"
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = timed(lambda: a @ b, repeats=10)
    return 2 * 2048**3 / seconds, f"fp32 2048x2048 matmul measured here ({torch.get_num_threads()} threads)"


# Dense datasheet peaks (TFLOP/s) at fp32 without tensor cores: the precision both loops train in.
GPU_PEAKS = {"H200": (67.0, "fp32 67 TFLOP/s (datasheet)"), "H100": (67.0, "fp32 67 TFLOP/s (SXM datasheet)")}


class Utilisation:
    """How busy the device was while a block ran: a CUDA device's utilisation sampled through NVML (when
    pynvml is installed), or the CPU seconds this process used per wall second and thread."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.samples: list[float] = []

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        if self.device.type == "cuda":
            import threading

            self._stop = threading.Event()

            def sample():
                while not self._stop.wait(0.05):
                    try:
                        self.samples.append(float(torch.cuda.utilization(self.device)))
                    except Exception:  # no NVML here: report the share as unknown
                        return

            self._thread = threading.Thread(target=sample, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self._stop.set()
            self._thread.join()
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def share(self) -> float | None:
        if self.device.type == "cuda":
            return round(statistics.mean(self.samples) / 100, 3) if self.samples else None
        return round(self.cpu / self.wall / torch.get_num_threads(), 3)


def reference_throughput(train_dir: Path, steps: int, device: torch.device, warmup: int = 3) -> dict:
    torch.manual_seed(0)
    loader = reference_loader(reference_dataset(train_dir))
    model = ReferenceDCGAN(device)
    batches = endless(loader)
    textbook_steps(model, batches, warmup)
    with Utilisation(device) as busy:
        textbook_steps(model, batches, steps)
    real, _ = next(batches)
    flops = step_flops(lambda: model.train_step(real))
    batches.close()
    return {
        "steps": steps,
        "seconds": round(busy.wall, 2),
        "images_per_second": round(steps * BATCH / busy.wall, 1),
        "flops_per_step": flops,
        "model_flops_per_second": flops * steps / busy.wall,
        "device_busy": busy.share(),
    }


def load_split(split_dir: Path, size: int = 64, cache: DecodedPhotoCache | None = None):
    """The split's photos squared to ``size`` as one uint8 tensor, through ``cache`` when given (as training
    jobs read them: imagegen.services.decoded_photos)."""
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    images, labels = [], []
    for index, name in enumerate(classes):
        for path in sorted((split_dir / name).glob("*.jpg")):
            entry = decode_cached(path.read_bytes(), size, cache)
            images.append(entry[0])
            labels.append(index)
    return torch.stack(images), torch.tensor(labels), classes


def decoding(train_dir: Path) -> tuple[dict, tuple]:
    """Seconds to get the training set ready: decoding every photo, then again from the decoded-photo cache."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        cache = DecodedPhotoCache(folder)
        started = time.perf_counter()
        first = load_split(train_dir, cache=cache)
        decoded = time.perf_counter() - started
        started = time.perf_counter()
        second = load_split(train_dir, cache=cache)
        cached = time.perf_counter() - started
    assert torch.equal(first[0], second[0])
    return {
        "photos": len(first[0]),
        "decode_seconds": round(decoded, 2),
        "from_cache_seconds": round(cached, 2),
        "ms_per_photo_decoded": round(decoded / len(first[0]) * 1000, 2),
        "ms_per_photo_cached": round(cached / len(first[0]) * 1000, 2),
    }, first


def our_throughput(data: tuple, steps: int, device: torch.device, warmup: int = 3) -> tuple[dict, Trainer]:
    images, labels, classes = data
    trainer = Trainer(GANConfig(classes=classes), images, labels, batch_size=BATCH, seed=0, device=device)
    trainer.fit(warmup)
    with Utilisation(device) as busy:
        summary = trainer.fit(steps)
    flops = step_flops(trainer.train_step)
    return {
        "steps": steps,
        "seconds": round(summary["seconds"], 2),
        "images_per_second": round(summary["images_per_second"], 1),
        "flops_per_step": flops,
        "model_flops_per_second": flops * steps / busy.wall,
        "device_busy": busy.share(),
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
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (CUDA when present)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    train_dir = args.data / "train"
    reference = reference_throughput(train_dir, args.steps, device)
    pipeline, data = decoding(train_dir)
    ours, trainer = our_throughput(data, args.steps, device)
    latency = generation_latency(trainer)
    peak, peak_source = peak_flops(device)
    for loop in (reference, ours):
        loop["mfu"] = round(loop["model_flops_per_second"] / peak, 4)
        loop["model_gflops_per_second"] = round(loop.pop("model_flops_per_second") / 1e9, 2)
    today = datetime.date.today().isoformat()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "no GPU"
    result = {
        "date": today,
        "device": f"{device.type.upper()}, {torch.get_num_threads()} threads ({platform.machine()}), {gpu}",
        "torch": torch.__version__,
        "mlcore": mlcore.__version__,
        "batch_size": BATCH,
        "peak_flops_per_second": peak,
        "peak_source": peak_source,
        "reference_dcgan": reference,
        "ours_cgan": ours,
        "speedup": round(ours["images_per_second"] / reference["images_per_second"], 2),
        "training_set": pipeline,
        "generation_latency": latency,
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{today}-throughput.json").write_text(json.dumps(result, indent=2) + "\n")

    def busy(loop: dict) -> str:
        return "n/a (no NVML)" if loop["device_busy"] is None else f"{loop['device_busy']:.0%}"

    table = [
        f"# Training throughput and generation latency ({today}, {result['device']})",
        "",
        "| loop | images/s (batch 64, 64 px) | ratio | GFLOP per step | model GFLOP/s | MFU | device busy |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| textbook DCGAN (ImageFolder, per-step JPEG decode, ngf=ndf=64) | {reference['images_per_second']} | 1.00 "
        f"| {reference['flops_per_step'] / 1e9:.1f} | {reference['model_gflops_per_second']} | {reference['mfu']:.1%} | {busy(reference)} |",
        f"| mlcore cgan trainer (decoded once, DiffAugment, SN, EMA, width 32) | {ours['images_per_second']} | {result['speedup']} "
        f"| {ours['flops_per_step'] / 1e9:.1f} | {ours['model_gflops_per_second']} | {ours['mfu']:.1%} | {busy(ours)} |",
        "",
        f"MFU: model FLOP/s (PyTorch's FlopCounterMode over one training step, forward and backward) against "
        f"{peak / 1e9:.0f} GFLOP/s, {peak_source}. Device busy: "
        + ("the GPU's utilisation sampled through NVML while the timed steps ran." if device.type == "cuda" else
           "CPU seconds of the training process per wall second and thread while the timed steps ran (the "
           "reference's 2 DataLoader workers decode in other processes, not counted)."),
        "",
        f"Getting the training set ready ({pipeline['photos']} photos, 64 px): decoding, squaring and naming the "
        f"colour {pipeline['decode_seconds']} s ({pipeline['ms_per_photo_decoded']} ms a photo); from the "
        f"decoded-photo cache {pipeline['from_cache_seconds']} s ({pipeline['ms_per_photo_cached']} ms a photo), "
        "as every later training run on the same worker reads it.",
        "",
        f"Generation of 16 images at 64 px on the CPU: median {latency['median_ms']} ms, p90 {latency['p90_ms']} ms; "
        f"generator {latency['generator_weights_mb']} MB of weights; the generating process peaked at "
        f"{latency['peak_rss_mb']} MB RSS, {latency['rss_after_import_mb']} MB of it torch and Python before loading.",
        "",
        "The ratio mixes two things: our loop decodes the photos once and keeps them as a uint8 tensor on the",
        "device, augmenting there (the reference decodes every JPEG at every step on the CPU), and our networks",
        "are narrower (base width 32 against DCGAN's 64, about a quarter of the convolution FLOPs) while adding",
        "spectral norm, DiffAugment and EMA.",
        "",
        f"Command: `.venv/bin/python bench/throughput.py --device {args.device}` (train split of ../shared/data/clothing-dataset-small).",
    ]
    (out / f"{today}-throughput.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
