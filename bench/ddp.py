"""Distributed training throughput: the cgan trainer with 1 and 2 processes (DDP under torchrun, gloo) on the CPU.

One run on one machine, every figure measured in the same run:

    .venv/bin/python bench/ddp.py [--data ../shared/data/clothing-dataset-small] [--steps 60] [--quick]

The train split is decoded once (64 px) into a tensor file that every run reads. Three runs of the same
trainer (mlcore.training.trainer.Trainer, default widths, per-process batch --batch-size, seed 0), each timed over
--steps steps after --warmup steps: 1 process with 1 torch thread (the baseline), 2 processes with 1 thread
each (torchrun --standalone, DistributedDataParallel; global batch 2 x batch), and, for context, 1 process
with 2 threads. Scaling efficiency = images/s(2 processes) / (2 x images/s(1 process, 1 thread)).
Results go to bench/results/<date>-ddp.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mlcore  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)
import torch  # noqa: E402

from bench.common import DATA, fill_defaults, list_classes, log, machine, photo_paths, start_run, write_results  # noqa: E402

QUICK = {"steps": 4, "warmup": 1, "per_class": 8, "classes": 3}
FULL = {"steps": 60, "warmup": 5, "per_class": None, "classes": None}


def decode_split(train_dir: Path, classes: list[str], per_class: int | None, size: int, target: Path) -> int:
    """Decode the split's photos once into ``target`` (uint8 images, labels, class names); returns the count."""
    from mlcore.data import load_image, stack_images

    paths = photo_paths(train_dir, classes, per_class)
    index = {name: i for i, name in enumerate(classes)}
    images = stack_images([load_image(path) for path in paths], size)
    labels = torch.tensor([index[path.parent.name] for path in paths], dtype=torch.long)
    torch.save({"images": images, "labels": labels, "classes": classes}, target)
    return len(paths)


def worker(args) -> None:
    """One training process (alone, or one of torchrun's): train, time, and (rank 0) write the figures."""
    from mlcore import distributed
    from mlcore.gan.config import GANConfig
    from mlcore.training.trainer import Trainer

    torch.set_num_threads(args.threads)
    data = torch.load(args.tensors, weights_only=True)
    trainer = Trainer(GANConfig(classes=data["classes"]), data["images"], data["labels"], batch_size=args.batch_size, seed=0)
    ctx = distributed.initialise("cpu") if distributed.launched_by_torchrun() else None
    if ctx is not None:
        trainer.distribute(ctx)
    trainer.fit(args.warmup)  # first steps pay for allocations (and DDP's bucket set-up)
    if ctx is not None:
        distributed.barrier(ctx)
    summary = trainer.fit(args.steps)
    if ctx is None or ctx.is_main:
        args.report.write_text(json.dumps({
            "processes": summary["world_size"],
            "threads_per_process": args.threads,
            "batch_per_process": trainer.batch_size,
            "global_batch": summary["global_batch_size"],
            "steps": summary["steps_done"],
            "seconds": round(summary["seconds"], 2),
            "images_per_second": round(summary["images_per_second"], 1),
        }))
    distributed.teardown()


def run_config(args, processes: int, threads: int, folder: Path) -> dict:
    """Run the worker with ``processes`` processes (torchrun when more than one) of ``threads`` threads."""
    report = folder / f"p{processes}-t{threads}.json"
    worker_args = [
        "bench/ddp.py", "--worker", "--tensors", str(folder / "train.pt"), "--report", str(report),
        "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size", str(args.batch_size),
        "--threads", str(threads),
    ]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes), *worker_args]
    else:
        command = [sys.executable, *worker_args]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    log(f"{processes} process(es) x {threads} thread(s): {args.steps} steps of batch {args.batch_size} per process")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    result = json.loads(report.read_text())
    log(f"  {result['images_per_second']} images/s")
    return result


def markdown(result: dict) -> str:
    rows = "\n".join(
        f"| {r['processes']} | {r['threads_per_process']} | {r['batch_per_process']} | {r['global_batch']} | "
        f"{r['images_per_second']} |"
        for r in result["runs"]
    )
    m = result["machine"]
    return (
        f"# DDP training throughput ({result['date']})\n\n"
        f"cgan trainer (mlcore.training.trainer.Trainer, default widths) at {result['image_size']} px on {result['images']} "
        f"photos of the train split, {result['steps']} timed steps after {result['warmup']} warm-up steps; "
        f"CPU, gloo backend, torchrun --standalone.\n\n"
        "| processes | torch threads each | batch per process | global batch | images/s |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"{rows}\n\n"
        f"Scaling efficiency (2 processes against 2 x 1 process, 1 thread each): **{result['scaling_efficiency']}**. "
        f"2 processes x 1 thread against 1 process x 2 threads: **{result['processes_vs_threads']}x**.\n\n"
        f"Machine: {m['processor']}, {m['usable_cpus']} usable CPUs, torch {m['torch']}, {m['device']}.\n\n"
        f"Command: `{result['command']}`\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA, help="clothing dataset root (default %(default)s)")
    parser.add_argument("--steps", type=int, help="timed steps per run (default 60)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 5)")
    parser.add_argument("--batch-size", type=int, default=32, help="batch per process (default 32)")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--classes", type=int, help="use only the first N classes (default all)")
    parser.add_argument("--per-class", type=int, help="at most N photos per class (default all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of this process (default 1)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="results folder (default %(default)s)")
    parser.add_argument("--tag", help="appended to the result files' stem")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 classes, 8 photos each, 4 steps")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tensors", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    fill_defaults(args, QUICK, FULL)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1:
        raise SystemExit("--steps and --batch-size must be >= 1, --warmup >= 0")
    today, stem, command = start_run(args, "ddp", argv)
    train_dir = args.data / "train"
    classes = list_classes(train_dir, args.classes)
    with tempfile.TemporaryDirectory(prefix="imagegen-bench-ddp-") as tmp:
        folder = Path(tmp)
        log(f"decoding {train_dir} ({len(classes)} classes) at {args.image_size} px")
        count = decode_split(train_dir, classes, args.per_class, args.image_size, folder / "train.pt")
        log(f"{count} photos")
        one = run_config(args, 1, 1, folder)
        two = run_config(args, 2, 1, folder)
        threaded = run_config(args, 1, 2, folder)
    result = {
        "date": today,
        "command": command,
        "image_size": args.image_size,
        "images": count,
        "classes": classes,
        "steps": args.steps,
        "warmup": args.warmup,
        "runs": [one, two, threaded],
        "scaling_efficiency": round(two["images_per_second"] / (2 * one["images_per_second"]), 2),
        "processes_vs_threads": round(two["images_per_second"] / threaded["images_per_second"], 2),
        "machine": machine(1, note="each run sets its own threads (see runs)"),
    }
    write_results(args.out, stem, result, markdown(result))


if __name__ == "__main__":
    main()
