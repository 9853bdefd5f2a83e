"""Inference speed: the generator's images/s per batch size, and jobs/s through the whole queue.

    .venv/bin/python bench/inference.py [--quick] [--parts generator,queue]

1. Generator: images/s of a seeded, untrained but real cgan Sampler (weights do not change the cost) for
   batch sizes 1, 2, 4, ..., 256 at 64 and 128 px: one forward pass of the batch plus the copy back to the
   CPU, median of --repeats after a warm-up pass, through the same mlcore.inference.FastPath the workers
   use. Variants on the CPU: fp32 (the workers' default), channels-last, and torch.compile (the warm-up
   pass pays for the compilation); on a CUDA GPU, when there is one: fp32, bf16 autocast, bf16 +
   channels-last, and bf16 + channels-last + torch.compile with CUDA graphs ("reduce-overhead").
2. Queue: jobs/s from the first API request to the last stored image. Everything is real and private to
   the run: a PostgreSQL database made for it (--database-url, dropped and created again), a redis-server
   on --redis-port, gunicorn serving the API (bench/inference_settings.py), and 1 and 2 `celery worker`
   processes (concurrency 1, the gpu queue, on the CPU). --jobs single-image generate jobs are POSTed to
   /api/products/<id>/generate/ by --clients threads; the clock stops when every one of them has its
   image. Each configuration runs with batching on (IMAGEGEN_INFERENCE_MAX_BATCH --max-batch) and off
   (IMAGEGEN_INFERENCE_MAX_BATCH=1, the baseline), after a warm-up round that loads the model in every
   worker. The load generator, server, workers and databases share the machine's cores.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from base64 import b64encode
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import fill_defaults, log, machine, recreate_database, start_run, timed, write_results  # noqa: E402

QUICK = {"sizes": "64", "batches": "1,4,16", "variants": "fp32", "repeats": 3, "jobs": 24, "worker_counts": "1"}
FULL = {"sizes": "64,128", "batches": "1,2,4,8,16,32,64,128,256", "variants": "fp32,channels_last,compile", "repeats": 10,
        "jobs": 200, "worker_counts": "1,2"}
# (name, options) of the generator variants; the GPU ones run only where CUDA is present.
CPU_VARIANTS = {
    "fp32": {"precision": "fp32", "channels_last": "off", "compile": "off"},
    "channels_last": {"precision": "fp32", "channels_last": "on", "compile": "off"},
    "compile": {"precision": "fp32", "channels_last": "off", "compile": "default"},
}
GPU_VARIANTS = {
    "cuda fp32": {"precision": "fp32", "channels_last": "off", "compile": "off"},
    "cuda bf16": {"precision": "bf16", "channels_last": "off", "compile": "off"},
    "cuda bf16 + channels_last": {"precision": "bf16", "channels_last": "on", "compile": "off"},
    "cuda bf16 + channels_last + compile (CUDA graphs)": {"precision": "bf16", "channels_last": "on", "compile": "reduce-overhead"},
}
CLASSES = ["dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt"]
PASSWORD = "bench-pass-123"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short run that checks the benchmark works")
    parser.add_argument("--parts", default="generator,queue")
    parser.add_argument("--sizes", default=None, help="image sides, comma-separated")
    parser.add_argument("--batches", default=None, help="batch sizes, comma-separated")
    parser.add_argument("--variants", default=None, help=f"CPU variants of {', '.join(CPU_VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=None, help="single-image jobs per queue configuration")
    parser.add_argument("--worker-counts", dest="worker_counts", default=None, help="worker processes, comma-separated")
    parser.add_argument("--max-batch", type=int, default=64, help="IMAGEGEN_INFERENCE_MAX_BATCH with batching on")
    parser.add_argument("--clients", type=int, default=4, help="threads sending the API requests")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the generator part")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/imagegen_inference")
    parser.add_argument("--redis-port", type=int, default=6397)
    parser.add_argument("--port", type=int, default=8779)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds one queue configuration may take")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tag", default="")
    args = fill_defaults(parser.parse_args(argv), QUICK, FULL)
    unknown = set(args.variants.split(",")) - set(CPU_VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(CPU_VARIANTS)}")
    return args


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


# --- 1. the generator ------------------------------------------------------------------------------------


def generator_throughput(args) -> list[dict]:
    import torch

    from mlcore.gan.config import GANConfig
    from mlcore.seeding import build_seeded
    from mlcore.inference import InferenceOptions
    from mlcore.gan.networks import Generator
    from mlcore.seeding import sample_noise
    from mlcore.gan.sampler import Sampler

    variants = [(f"cpu {name}", torch.device("cpu"), CPU_VARIANTS[name]) for name in args.variants.split(",")]
    if torch.cuda.is_available():
        variants += [(name, torch.device("cuda"), options) for name, options in GPU_VARIANTS.items()]
    rows = []
    for size in ints(args.sizes):
        config = GANConfig(classes=CLASSES, image_size=size)
        for name, device, options in variants:
            generator = build_seeded(lambda: Generator(config), 0)
            sampler = Sampler(config, generator, None, package_version="bench", step=0, device=device)
            largest = max(ints(args.batches))
            sampler.set_inference(InferenceOptions(**options, chunk=largest))
            for batch in ints(args.batches):
                z = sample_noise(batch, config.z_dim, batch)
                labels = torch.arange(batch) % len(CLASSES)

                def one_pass():
                    sampler._forward(z, labels)
                    if device.type == "cuda":
                        torch.cuda.synchronize()

                try:
                    seconds = timed(one_pass, args.repeats)
                except Exception as exc:  # e.g. torch.compile without a working compiler: say so, go on
                    log(f"{size} px {name} batch {batch}: {type(exc).__name__}: {str(exc)[:200]}")
                    rows.append({"size": size, "variant": name, "batch": batch, "error": str(exc)[:300]})
                    break
                rows.append({
                    "size": size, "variant": name, "batch": batch, "seconds_per_pass": seconds,
                    "images_per_second": round(batch / seconds, 1), "fast_path": sampler.fast.describe(),
                })
                log(f"{size} px {name} batch {batch}: {batch / seconds:.1f} images/s")
    return rows


# --- 2. the whole queue ------------------------------------------------------------------------------------


def prepare_queue(args, work: Path) -> dict:
    """A private database and Redis, the catalogue and a tiny trained model, a staff user for the API."""
    from bench.soak import Redis

    recreate_database(args.database_url)
    redis_server = Redis(args.redis_port, work / "redis.log")
    redis_server.start()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.inference_settings",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": f"redis://127.0.0.1:{args.redis_port}/0",
        "MEDIA_ROOT": str(work / "media"),
        "VAR_DIR": str(work / "var"),
        "IMAGEGEN_DEVICE": "cpu",
        "IMAGEGEN_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from bench.soak import make_catalogue_and_model

    call_command("migrate", verbosity=0)
    products = make_catalogue_and_model()
    User.objects.create_superuser("bench", "bench@example.com", PASSWORD)
    return {"env": env, "redis": redis_server, "products": [p.pk for p in products]}


def answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/schema/", timeout=2)
        return True
    except OSError:
        return False


def start_gunicorn(args, env: dict, log_path: Path) -> subprocess.Popen:
    if answers(args.port):
        # Another server there would take our requests (and refuse our user): pick a free --port.
        raise SystemExit(f"port {args.port} is already served by something else; pass a free --port")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{args.port}",
         "--workers", "2", "--worker-class", "gthread", "--threads", "2", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while not answers(args.port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"gunicorn did not start; see {log_path}")
        time.sleep(0.3)
    return proc


def post_job(args, product_id: int, seed: int) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{args.port}/api/products/{product_id}/generate/",
        data=json.dumps({"count": 1, "seed": seed}).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": "Basic " + b64encode(f"bench:{PASSWORD}".encode()).decode()},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        if reply.status != 202:
            raise RuntimeError(f"the API answered {reply.status}")
        return json.loads(reply.read())["id"]


def submit_and_wait(args, products: list[int], count: int, first_seed: int, timeout: float) -> dict:
    """POST ``count`` jobs from --clients threads; wait until each is finished. Times in seconds."""
    from imagegen.models import GeneratedImage, Job

    started = time.perf_counter()
    with ThreadPoolExecutor(args.clients) as pool:
        ids = list(pool.map(lambda i: post_job(args, products[i % len(products)], first_seed + i), range(count)))
    submitted = time.perf_counter() - started
    jobs = Job.objects.filter(pk__in=ids)
    while jobs.exclude(state__in=Job.FINISHED_STATES).exists():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"{count} jobs did not finish in {timeout} s")
        time.sleep(0.05)
    drained = time.perf_counter() - started
    images = GeneratedImage.objects.filter(job__in=ids)
    passes = Counter(image.parameters.get("batch", {}).get("pass") for image in images)
    return {
        "jobs": count, "submit_seconds": round(submitted, 2), "drain_seconds": round(drained, 2),
        "jobs_per_second": round(count / drained, 2),
        "states": dict(Counter(jobs.values_list("state", flat=True))),
        "jobs_with_one_image": sum(1 for n in Counter(images.values_list("job_id", flat=True)).values() if n == 1),
        "passes": len(passes), "mean_jobs_per_pass": round(count / max(1, len(passes)), 2),
    }


def queue_throughput(args, work: Path) -> list[dict]:
    from bench.soak import Worker

    setup = prepare_queue(args, work)
    server = start_gunicorn(args, setup["env"], work / "gunicorn.log")
    rows = []
    seed = 0
    try:
        for workers in ints(args.worker_counts):
            for batching, max_batch in (("off", 1), ("on", args.max_batch)):
                env = {**setup["env"], "IMAGEGEN_INFERENCE_MAX_BATCH": str(max_batch)}
                running = [Worker(100 * max_batch + i, env, work) for i in range(workers)]
                for w in running:
                    w.start()
                try:
                    # Warm-up: every worker has loaded the model before the clock runs.
                    submit_and_wait(args, setup["products"], 4 * workers, seed, args.timeout)
                    seed += 4 * workers
                    result = submit_and_wait(args, setup["products"], args.jobs, seed, args.timeout)
                    seed += args.jobs
                finally:
                    for w in running:
                        w.stop()
                row = {"workers": workers, "batching": batching, "max_batch": max_batch, **result}
                rows.append(row)
                log(f"{workers} worker(s), batching {batching}: {row['jobs_per_second']} jobs/s, "
                    f"{row['passes']} passes, states {row['states']}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        setup["redis"].kill()
    return rows


# --- the report ---------------------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    lines = [f"# Inference speed ({result['date']}, {result['machine']['device']})", ""]
    generator = [r for r in result["generator"] if "error" not in r]
    if generator:
        batches = sorted({r["batch"] for r in generator})
        lines += ["Generator images/s (one pass of the batch and the copy back to the CPU; median):", "",
                  "| size | variant | " + " | ".join(str(b) for b in batches) + " |",
                  "| --- | --- | " + " | ".join("---" for _ in batches) + " |"]
        for size, variant in dict.fromkeys((r["size"], r["variant"]) for r in generator):
            by_batch = {r["batch"]: r["images_per_second"] for r in generator if (r["size"], r["variant"]) == (size, variant)}
            lines.append(f"| {size} | {variant} | " + " | ".join(str(by_batch.get(b, "-")) for b in batches) + " |")
        lines.append("")
    for failed in (r for r in result["generator"] if "error" in r):
        lines.append(f"- {failed['size']} px {failed['variant']} failed at batch {failed['batch']}: {failed['error'][:120]}")
    if result["queue"]:
        lines += ["Whole queue, single-image generate jobs from the API request to the stored image:", "",
                  "| workers | batching | jobs | jobs/s | vs. batching off | requests sent in | passes | jobs per pass "
                  "| succeeded |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        off = {r["workers"]: r["jobs_per_second"] for r in result["queue"] if r["batching"] == "off"}
        for r in result["queue"]:
            ratio = r["jobs_per_second"] / off[r["workers"]] if off.get(r["workers"]) else None
            lines.append(
                f"| {r['workers']} | {r['batching']} (max {r['max_batch']}) | {r['jobs']} | {r['jobs_per_second']} "
                f"| {f'{ratio:.2f}x' if ratio else '-'} | {r['submit_seconds']} s | {r['passes']} | {r['mean_jobs_per_pass']} "
                f"| {r['states'].get('succeeded', 0)} |"
            )
        lines.append("")
    lines += [f"Machine: {result['machine']['platform']}, {result['machine']['usable_cpus']} usable CPUs, torch "
              f"{result['machine']['torch']}. Command: `{result['command']}`.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    today, stem, command = start_run(args, "inference", argv)
    parts = set(args.parts.split(","))
    import torch

    device = f"cuda ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "cpu (no GPU lent)"
    result = {"date": today, "command": command, "machine": machine(args.threads, device=device),
              "generator": [], "queue": []}
    if "generator" in parts:
        result["generator"] = generator_throughput(args)
    if "queue" in parts:
        work = Path(tempfile.mkdtemp(prefix="imagegen-inference-"))
        log(f"queue part: logs in {work}")
        result["queue"] = queue_throughput(args, work)
    write_results(args.out, stem, result, markdown(result))
    ok = all(r["jobs_with_one_image"] == r["jobs"] for r in result["queue"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
