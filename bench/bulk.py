"""Bulk: time to queue 10,000 generate jobs from one admin action, and the web's latency while it does.

    .venv/bin/python bench/bulk.py [--products 10000] [--quick]

Everything is real and private to the run: a PostgreSQL database made for it (--database-url, dropped and
created again) with --products products (one INSERT; queueing reads no photo), Redis db --redis-db as the
broker (queues of the run's own, deleted at the end), gunicorn (--workers x --threads, bench/bulk_settings.py: DEBUG off) serving the
demo shop, and one Celery worker process on the light queue that expands bulk operations. No inference
worker runs: the run_jobs messages stay in Redis, where they are counted.

1. A warm-up bulk operation over the first --warmup products goes through the same path.
2. Idle latency: --samples GETs, one after another, alternating the admin's product list (100 a page,
   with its count) and the API's progress of the warm-up operation, with nothing else running.
3. The admin action as a browser sends it: the changelist's "select all N" with "Generate images"
   (confirmation page), then the confirmation POST (the action itself: its response time is the
   request's). From that POST, the clock runs until every product's job exists and every run_jobs
   message is in Redis (sum over the chunks of ceil(chunk / batch)), polled every 50 ms. --repeats
   operations one after another (each previous one cancelled, to stay within the per-user cap); the
   medians are reported.
4. While each expansion runs, a second client sends the same GETs as in 2, back to back (the progress GET
   asks for the operation being expanded).
5. Idle again, after it: the same GETs with nothing running (the last operation now has all its jobs).

Latencies are the client's (requests, on loopback), with the client, gunicorn, the Celery worker and
PostgreSQL sharing the machine's cores.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import log, machine, recreate_database, write_results  # noqa: E402

USER, PASSWORD = "bench-admin", "bench-pass-123"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=None, help="products selected (full: 10000, quick: 600)")
    parser.add_argument("--samples", type=int, default=None, help="GETs of each idle phase (full: 400, quick: 40)")
    parser.add_argument("--warmup", type=int, default=100, help="products of the warm-up operation")
    parser.add_argument("--repeats", type=int, default=None, help="big operations, one after another (full: 3, quick: 1)")
    parser.add_argument("--quick", action="store_true", help="a small run that checks the benchmark works")
    parser.add_argument("--batch-size", type=int, default=16, help="IMAGEGEN_BULK_BATCH_SIZE")
    parser.add_argument("--chunk-size", type=int, default=1000, help="IMAGEGEN_BULK_CHUNK_SIZE")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/imagegen_bulk")
    parser.add_argument("--redis-db", type=int, default=12)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the queueing")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--stem", default=None)
    args = parser.parse_args(argv)
    if args.products is None:
        args.products = 600 if args.quick else 10_000
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.samples is None:
        args.samples = 40 if args.quick else 400
    return args


def environment(args) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.bulk_settings",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": f"redis://127.0.0.1:6379/{args.redis_db}",
        "MEDIA_ROOT": str(Path(tempfile.gettempdir()) / "imagegen-bulk-media"),
        "PYTHONPATH": str(ROOT),
        "IMAGEGEN_BULK_BATCH_SIZE": str(args.batch_size),
        "IMAGEGEN_BULK_CHUNK_SIZE": str(args.chunk_size),
        "IMAGEGEN_QUEUE": f"bench-bulk-inference-{os.getpid()}",
        "IMAGEGEN_LIGHT_QUEUE": f"bench-bulk-light-{os.getpid()}",
    }


def prepare(args) -> None:
    """Database, products and the admin user; in this process."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command

    from shop.models import Category, Product

    call_command("migrate", verbosity=0)
    categories = [Category.objects.create(slug=s, name=s.title()) for s in ("dress", "shoes", "hat", "pants")]
    Product.objects.bulk_create(
        (Product(name=f"Product {i:05d}", slug=f"bulk-{i}", category=categories[i % len(categories)])
         for i in range(args.products)),
        batch_size=2000,
    )
    User.objects.create_superuser(USER, "bench@example.com", PASSWORD)
    log(f"{args.products} products")


def start(args, env) -> list[subprocess.Popen]:
    """gunicorn and the light-queue Celery worker; returns once both answer."""
    import socket
    import urllib.request

    with socket.socket() as probe:
        # Another server on the port would answer in gunicorn's place, with other queues and database.
        if probe.connect_ex(("127.0.0.1", args.port)) == 0:
            raise SystemExit(f"port {args.port} is already in use; choose another with --port")

    from shop.celery import app

    from imagegen.conf import settings as conf

    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{args.port}",
         "--workers", str(args.workers), "--worker-class", "gthread", "--threads", str(args.threads),
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    name = f"bench-bulk-{os.getpid()}@localhost"
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "shop", "worker", "-Q", conf.LIGHT_QUEUE, "--concurrency", "1",
         "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "-n", name],
        cwd=ROOT, env=env, start_new_session=True,
    )
    procs = [web, worker]
    deadline = time.monotonic() + 120
    web_up = worker_up = False
    while not (web_up and worker_up):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            stop(procs)
            raise SystemExit("gunicorn or the Celery worker did not start")
        if not web_up:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{args.port}/admin/login/", timeout=2)
                web_up = True
            except OSError:
                time.sleep(0.5)
        if not worker_up:
            worker_up = bool(app.control.ping(destination=[name], timeout=1.0))
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, 15)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)


def signed_in(base: str):
    """A requests session logged into the admin through its login form (CSRF included)."""
    import requests

    session = requests.Session()
    page = session.get(f"{base}/admin/login/")
    session.post(
        f"{base}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": csrf(page.text), "username": USER, "password": PASSWORD, "next": "/admin/"},
        headers={"Referer": f"{base}/admin/login/"},
    ).raise_for_status()
    return session


def csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    if not match:
        raise SystemExit("no CSRF token in the page")
    return match.group(1)


def generate_action(session, base: str, *, select_across: bool, ids: list[int]) -> dict:
    """The admin's "Generate images" as a browser sends it; returns both requests' times and the operation id."""
    changelist = f"{base}/admin/shop/product/"
    data = {"csrfmiddlewaretoken": csrf(session.get(changelist).text), "action": "generate_images", "index": "0",
            "_selected_action": [str(i) for i in ids], "select_across": "1" if select_across else "0"}
    started = time.perf_counter()
    confirm = session.post(changelist, data=data, headers={"Referer": changelist})
    confirm_seconds = time.perf_counter() - started
    if confirm.status_code != 200 or 'name="apply"' not in confirm.text:
        raise SystemExit(f"no confirmation page ({confirm.status_code})")
    data = {"csrfmiddlewaretoken": csrf(confirm.text), "action": "generate_images", "apply": "1", "count": "1",
            "seed": "0", "_selected_action": [str(i) for i in (ids[:1] if select_across else ids)],
            "select_across": "1" if select_across else "0"}
    started = time.perf_counter()
    answer = session.post(changelist, data=data, headers={"Referer": changelist}, allow_redirects=False)
    seconds = time.perf_counter() - started
    # The action answers with a redirect to the list, whose page shows the message; that page is not the action's time.
    reply = session.get(changelist) if answer.status_code == 302 else answer
    match = re.search(r"Started bulk operation #(\d+)", reply.text)
    if answer.status_code != 302 or not match:
        said = re.findall(r'<li class="[^"]*">(.*?)</li>', reply.text)
        raise SystemExit(f"the action did not start a bulk operation ({reply.status_code}): {said}")
    return {"operation": int(match.group(1)), "started": started, "action_seconds": seconds,
            "confirmation_seconds": confirm_seconds}


def expected_messages(total: int, chunk: int, batch: int) -> int:
    return sum(math.ceil(min(chunk, total - start) / batch) for start in range(0, total, chunk))


def messages_waiting() -> int:
    """run_jobs messages in the inference queue (a Redis list of that name; nobody consumes it here)."""
    import redis

    from imagegen.conf import settings as conf

    return redis.Redis.from_url(os.environ["REDIS_URL"]).llen(conf.QUEUE)


def wait_until_queued(operation_id: int, total: int, args, started: float, *, already: int) -> dict:
    """Poll until every job exists and every run_jobs message is in Redis (besides the ``already`` there
    before); returns when each happened."""
    from imagegen.models import Job

    want = expected_messages(total, args.chunk_size, args.batch_size)
    jobs_at = None
    while True:
        jobs = Job.objects.filter(bulk_id=operation_id).count()
        messages = messages_waiting() - already
        now = time.perf_counter()
        if jobs >= total and jobs_at is None:
            jobs_at = now - started
        if jobs >= total and messages >= want:
            return {"jobs": jobs, "messages": messages, "expected_messages": want,
                    "jobs_seconds": round(jobs_at, 3), "queued_seconds": round(now - started, 3)}
        if now - started > args.timeout:
            raise SystemExit(f"after {args.timeout} s: {jobs} of {total} jobs, {messages} of {want} messages")
        time.sleep(0.05)


class Sampler:
    """GETs of the given URLs in turn, back to back, from one client; latencies per URL name in ms."""

    def __init__(self, session, urls: dict[str, str]):
        self.session, self.urls = session, urls
        self.times: dict[str, list[float]] = {name: [] for name in urls}
        self.errors = 0

    def one_round(self) -> None:
        for name, url in self.urls.items():
            started = time.perf_counter()
            reply = self.session.get(url)
            self.times[name].append(1000 * (time.perf_counter() - started))
            self.errors += reply.status_code != 200

    def run(self, rounds: int) -> None:
        for _ in range(rounds):
            self.one_round()

    def run_until(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.one_round()

    def summary(self) -> dict:
        return {name: percentiles(times) for name, times in self.times.items()} | {"errors": self.errors}


def percentiles(times: list[float]) -> dict:
    if not times:
        return {"n": 0}
    ordered = sorted(times)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 2)

    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 2), "p99_ms": at(0.99), "max_ms": round(ordered[-1], 2)}


def main(argv=None) -> dict:
    args = parse_args(argv)
    env = environment(args)
    os.environ.update(env)
    recreate_database(args.database_url)
    prepare(args)
    from imagegen import services
    from imagegen.models import BulkOperation, Job
    from shop.models import Product

    base = f"http://127.0.0.1:{args.port}"
    procs = start(args, env)
    try:
        session = signed_in(base)
        ids = list(Product.objects.order_by("pk").values_list("pk", flat=True))
        warm = generate_action(session, base, select_across=False, ids=ids[: args.warmup])
        wait_until_queued(warm["operation"], args.warmup, args, warm["started"], already=0)
        urls = {"product_changelist": f"{base}/admin/shop/product/",
                "bulk_progress": f"{base}/api/bulk/{warm['operation']}/"}
        before = Sampler(signed_in(base), urls)
        before.run(args.samples // 2)
        log(f"idle before: {before.summary()}")

        during = Sampler(signed_in(base), urls)
        runs = []
        for repeat in range(args.repeats):
            if runs:
                # Cancelled, so the next repeat stays within the per-user cap of unfinished operations.
                services.bulk.cancel(BulkOperation.objects.get(pk=runs[-1]["action"]["operation"]))
            already = messages_waiting()
            action = generate_action(session, base, select_across=True, ids=ids[:100])
            during.urls = urls | {"bulk_progress": f"{base}/api/bulk/{action['operation']}/"}
            stop_sampling = threading.Event()
            sampler = threading.Thread(target=during.run_until, args=(stop_sampling,))
            sampler.start()
            queued = wait_until_queued(action["operation"], args.products, args, action["started"], already=already)
            stop_sampling.set()
            sampler.join()
            runs.append({"action": action, "queued": queued})
            log(f"repeat {repeat + 1}: action {1000 * action['action_seconds']:.1f} ms, queued: {queued}")
        log(f"during: {during.summary()}")

        after = Sampler(signed_in(base), during.urls)
        after.run(args.samples // 2)
        log(f"idle after: {after.summary()}")
    finally:
        stop(procs)
        import redis

        # The run's messages go with it (nothing ever consumes its inference queue).
        redis.Redis.from_url(os.environ["REDIS_URL"]).delete(env["IMAGEGEN_QUEUE"], env["IMAGEGEN_LIGHT_QUEUE"])

    operation = BulkOperation.objects.get(pk=runs[-1]["action"]["operation"])
    seeds = set(Job.objects.filter(bulk=operation).values_list("parameters__seed", flat=True))
    queued = runs[-1]["queued"]
    action_ms = [1000 * r["action"]["action_seconds"] for r in runs]
    queued_s = [r["queued"]["queued_seconds"] for r in runs]
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(threads=args.threads, gunicorn_workers=args.workers, celery_light_workers=1),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "action": {"response_ms": round(statistics.median(action_ms), 1), "response_ms_each": [round(t, 1) for t in action_ms],
                   "confirmation_page_ms": round(1000 * statistics.median(r["action"]["confirmation_seconds"] for r in runs), 1),
                   "warmup_action_response_ms": round(1000 * warm["action_seconds"], 1)},
        "queued": {"jobs": queued["jobs"], "messages": queued["messages"], "expected_messages": queued["expected_messages"],
                   "jobs_seconds": round(statistics.median(r["queued"]["jobs_seconds"] for r in runs), 3),
                   "queued_seconds": round(statistics.median(queued_s), 3), "queued_seconds_each": queued_s,
                   "jobs_per_second": round(args.products / statistics.median(queued_s), 1),
                   "all_repeats_complete": all(r["queued"]["jobs"] == args.products
                                               and r["queued"]["messages"] == r["queued"]["expected_messages"] for r in runs)},
        "operation": {"state": operation.state, "total": operation.total, "expanded": operation.expanded,
                      "distinct_seeds": len(seeds)},
        "latency": {"idle_before": before.summary(), "during_expansion": during.summary(), "idle_after": after.summary()},
    }
    ok = (result["queued"]["all_repeats_complete"]
          and len(seeds) == args.products and during.errors == 0 and before.errors == 0 and after.errors == 0)
    result["checks_passed"] = ok
    table = markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, args.stem or f"{result['date']}-bulk", result, table)
    if not ok:
        raise SystemExit("the run did not queue exactly one job per product and the expected messages")
    return result


def markdown(r: dict) -> str:
    q, a, lat, s = r["queued"], r["action"], r["latency"], r["settings"]
    rows = []
    for name, label in (("product_changelist", "admin product list (100 a page)"), ("bulk_progress", "API bulk progress GET")):
        idle, busy, before = lat["idle_after"][name], lat["during_expansion"][name], lat["idle_before"][name]
        ratio = round(busy["p50_ms"] / idle["p50_ms"], 2) if busy.get("n") and idle.get("p50_ms") else None
        rows.append(
            f"| {label} | {before['p50_ms']} / {before['p99_ms']} | {idle['p50_ms']} / {idle['p99_ms']} "
            f"| {busy.get('p50_ms')} / {busy.get('p99_ms')} (n={busy.get('n')}) | {ratio} |"
        )
    return (
        f"# Bulk operation: queueing {s['products']:,} generate jobs from one admin action, {r['date']}\n\n"
        f"gunicorn {s['workers']} workers x {s['threads']} threads, PostgreSQL, Redis broker, one Celery worker "
        f"process on the light queue expanding the operation (chunks of {s['chunk_size']} jobs, run_jobs messages of "
        f"{s['batch_size']} jobs); client on loopback; {r['machine']['usable_cpus']} CPU cores shared by everything, no GPU.\n\n"
        f"Median of {s['repeats']} operations, one after another, each over every product:\n\n"
        f"- The action's own response (the confirmation POST that starts the operation, answered with a redirect): "
        f"**{a['response_ms']} ms** "
        f"(its confirmation page: {a['confirmation_page_ms']} ms).\n"
        f"- From that POST until all {q['jobs']:,} jobs exist: {q['jobs_seconds']} s; until all {q['messages']} "
        f"run_jobs messages (expected {q['expected_messages']}) are in Redis: **{q['queued_seconds']} s** "
        f"({q['jobs_per_second']} jobs/s; each: {q['queued_seconds_each']}).\n"
        f"- One job per product, {r['operation']['distinct_seeds']:,} distinct seeds; checks passed: {r['checks_passed']}.\n\n"
        "Latency of other requests, p50 / p99 in ms (the client sends them one after another):\n\n"
        "| request | idle, before | idle, after (same URLs) | during the expansion | p50 during / idle after |\n"
        "| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + "\n\n"
        "Before, the progress GET asks for the warm-up operation (a few jobs); during and after, for the big one.\n"
    )


if __name__ == "__main__":
    main()
