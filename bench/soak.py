"""Soak test: many generate jobs through 2 real worker processes while a worker is SIGKILLed and Redis restarts.

    .venv/bin/python bench/soak.py [--jobs 1000] [--workers 2] [--out bench/results]

Everything is real and private to the run: a database created for it on the PostgreSQL server
(--database-url, dropped and created again), a redis-server started on --redis-port without persistence
(so its restart loses every message in it, the worst case), `celery worker` processes, and the reconciler
called every --reconcile-every seconds as Celery beat would. Faults: when a quarter of the jobs are done
worker 1 is SIGKILLed with its process group (and started again a few seconds later, as a supervisor
would); at half, Redis is killed and started again. The run ends when every job is in a final state, or at
--timeout. Report (JSON and markdown in --out): jobs submitted, succeeded, failed (with reasons), lost (not
finished, or finished without its image), duplicated images (must be 0), attempts, time to drain. Exit code
1 when anything was lost or duplicated.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import recreate_database  # noqa: E402

# Short leases and reconciler waits: the faults are recovered from in seconds, not minutes.
LEASE_SECONDS = 4
QUEUED_AFTER = 5
CATEGORIES = {"dress": 6, "shoes": 6}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/imagegen_soak")
    parser.add_argument("--redis-port", type=int, default=6391)
    parser.add_argument("--reconcile-every", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for the queue to drain")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--tag", default="", help="appended to the result files' stem")
    args = parser.parse_args(argv)
    if args.jobs < 10 or args.workers < 2:
        parser.error("--jobs must be >= 10 and --workers >= 2 (one of them is killed)")
    return args


class Redis:
    """A private redis-server without persistence that can be killed and started again on the same port."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port, self.log_path, self.proc = port, log_path, None

    def start(self) -> None:
        log_file = self.log_path.open("a")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=log_file, stderr=subprocess.STDOUT,
        )
        import redis

        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"redis-server did not start on port {self.port}; see {self.log_path}")
                time.sleep(0.1)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Worker:
    def __init__(self, index: int, env: dict, log_dir: Path) -> None:
        self.index, self.env, self.log_dir, self.proc = index, env, log_dir, None

    def start(self) -> None:
        log_file = (self.log_dir / f"worker-{self.index}.log").open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "shop", "worker", "-Q", "gpu", "--concurrency", "1",
             "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "-n", f"soak-{self.index}-{os.getpid()}@%h"],
            cwd=ROOT, env=self.env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def sigkill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def setup_django(args, media: Path) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": f"redis://127.0.0.1:{args.redis_port}/0",
        "MEDIA_ROOT": str(media),
        "VAR_DIR": str(media.parent / "var"),
        "IMAGEGEN_DEVICE": "cpu",
        "IMAGEGEN_JOB_LEASE_SECONDS": str(LEASE_SECONDS),
        "IMAGEGEN_RECONCILE_QUEUED_AFTER": str(QUEUED_AFTER),
        "IMAGEGEN_LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "shop.settings",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def make_catalogue_and_model():
    """A few products with demo photos and a tiny trained cgan covering their categories."""
    from django.core.files import File

    from imagegen.services.products import product_photos
    from imagegen.services.training import register_version, train, training_parameters
    from shop.models import Category, Product

    demo = ROOT / "shop" / "demo_catalogue"
    products = []
    for slug, count in CATEGORIES.items():
        category = Category.objects.create(slug=slug, name=slug.title())
        for i, photo in enumerate(sorted((demo / slug).glob("*.jpg"))[:count]):
            product = Product(name=f"{slug} {i}", slug=f"{slug}-{i}", category=category)
            with photo.open("rb") as fh:
                product.image.save(photo.name, File(fh), save=False)
            product.save()
            products.append(product)
    params = training_parameters(steps=5, batch_size=8, seed=0, device="cpu") | {"product_ids": [p.pk for p in products]}
    trainer, summary, data = train(params, list(product_photos(params["product_ids"])))
    register_version(trainer, summary, data, params)
    return products


def finished_count() -> int:
    from imagegen.models import Job

    return Job.objects.filter(state__in=Job.FINISHED_STATES).count()


def report(submitted: list[int], started: float, drained: float | None, faults: list[dict], args) -> dict:
    from django.db.models import Count

    from imagegen.models import GeneratedImage, Job

    jobs = Job.objects.filter(pk__in=submitted)
    states = Counter(jobs.values_list("state", flat=True))
    images = dict(GeneratedImage.objects.filter(job__in=jobs).values_list("job").annotate(n=Count("id")))
    succeeded_ids = list(jobs.filter(state=Job.State.SUCCEEDED).values_list("pk", flat=True))
    duplicated = sum(max(0, images.get(pk, 0) - 1) for pk in submitted)
    missing_image = sum(1 for pk in succeeded_ids if images.get(pk, 0) == 0)
    unfinished = sum(n for state, n in states.items() if state not in Job.FINISHED_STATES)
    return {
        "date": datetime.date.today().isoformat(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "jobs": args.jobs, "workers": args.workers, "lease_seconds": LEASE_SECONDS,
            "reconcile_queued_after": QUEUED_AFTER, "reconcile_every": args.reconcile_every, "images_per_job": 1,
        },
        "faults": faults,
        "submitted": len(submitted),
        "succeeded": states.get(Job.State.SUCCEEDED, 0),
        "failed": states.get(Job.State.FAILED, 0),
        "failure_reasons": dict(Counter(jobs.filter(state=Job.State.FAILED).values_list("error", flat=True))),
        "cancelled": states.get(Job.State.CANCELLED, 0),
        "lost": unfinished + missing_image,
        "unfinished": unfinished,
        "succeeded_without_image": missing_image,
        "duplicated_images": duplicated,
        "attempts": {str(k): v for k, v in sorted(Counter(jobs.values_list("attempts", flat=True)).items())},
        "drain_seconds": round(drained - started, 1) if drained else None,
        "jobs_per_second": round(len(submitted) / (drained - started), 2) if drained else None,
    }


def markdown(result: dict) -> str:
    faults = "; ".join(f"{f['fault']} at {f['finished_jobs']} finished jobs ({f['seconds']} s)" for f in result["faults"])
    return "\n".join([
        f"# Soak test ({result['date']})",
        "",
        "| submitted | succeeded | failed | lost | duplicated images | attempts (jobs) | time to drain |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        f"| {result['submitted']} | {result['succeeded']} | {result['failed']} | {result['lost']} "
        f"| {result['duplicated_images']} | {', '.join(f'{k}: {v}' for k, v in result['attempts'].items())} "
        f"| {result['drain_seconds']} s |",
        "",
        f"{result['settings']['workers']} `celery worker` processes (concurrency 1) on a private redis-server without "
        f"persistence and PostgreSQL; one generate job = one 64 px image from a tiny cgan. Faults: {faults}. "
        f"Lease {result['settings']['lease_seconds']} s, reconciler every {result['settings']['reconcile_every']} s "
        f"(re-sends jobs queued for {result['settings']['reconcile_queued_after']} s or with an expired lease). "
        f"Machine: {result['machine']['platform']}, {result['machine']['cpus']} CPUs.",
        "",
    ])


def main(argv=None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="imagegen-soak-"))
    media = work / "media"
    media.mkdir()
    log(f"soak: {args.jobs} jobs, {args.workers} workers; logs in {work}")
    recreate_database(args.database_url)
    redis_server = Redis(args.redis_port, work / "redis.log")
    redis_server.start()
    env = setup_django(args, media)
    products = make_catalogue_and_model()
    workers = [Worker(i, env, work) for i in range(args.workers)]
    for w in workers:
        w.start()

    from imagegen import services
    from imagegen.services.generation import request_generation

    stop = threading.Event()

    def reconciler():
        from django.db import connection

        while not stop.wait(args.reconcile_every):
            try:
                services.reconcile()
            except Exception as exc:  # e.g. while Redis is down: try again next round, as beat would
                log(f"reconciler: {exc}")
        connection.close()

    threading.Thread(target=reconciler, daemon=True).start()
    faults: list[dict] = []
    started = time.monotonic()
    submitted = []
    for i in range(args.jobs):
        submitted.append(request_generation(products[i % len(products)], count=1, seed=i).pk)
    log(f"submitted {len(submitted)} jobs in {time.monotonic() - started:.1f} s")

    drained = None
    killed_at = restarted = None
    try:
        while time.monotonic() - started < args.timeout:
            done = finished_count()
            if killed_at is None and done >= args.jobs // 4:
                workers[1].sigkill()
                killed_at = time.monotonic()
                faults.append({"fault": "worker 1 SIGKILLed", "finished_jobs": done, "seconds": round(killed_at - started, 1)})
                log(f"SIGKILLed worker 1 at {done} finished jobs")
            if killed_at is not None and workers[1].proc.poll() is not None and time.monotonic() - killed_at > 3:
                workers[1].start()
                log("worker 1 started again")
            if restarted is None and done >= args.jobs // 2:
                redis_server.kill()
                faults.append({"fault": "Redis killed and restarted (no persistence)", "finished_jobs": done,
                               "seconds": round(time.monotonic() - started, 1)})
                time.sleep(2)
                redis_server.start()
                restarted = time.monotonic()
                log(f"restarted Redis at {done} finished jobs")
            if done >= args.jobs:
                drained = time.monotonic()
                break
            time.sleep(0.5)
    finally:
        stop.set()
        for w in workers:
            w.stop()
        redis_server.kill()
    result = report(submitted, started, drained, faults, args)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{result['date']}-soak" + (f"-{args.tag}" if args.tag else "")
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result), flush=True)
    ok = result["lost"] == 0 and result["duplicated_images"] == 0 and drained is not None
    log("OK" if ok else f"FAILED: lost {result['lost']}, duplicated {result['duplicated_images']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
