"""Storefront load: the public personalized-images endpoint under gunicorn, and event ingestion, hit by
wrk on loopback.

    .venv/bin/python bench/storefront_load.py [--seconds 30] [--rate 200] [--event-rate 1000]

Everything is real and private to the run: a PostgreSQL database made for it (--database-url, dropped and
created again), Redis db --redis-db on the local server (flushed) as the cache shared by the web
processes and as the event buffer, gunicorn with --workers gthread workers serving shop.wsgi with
bench/load_settings.py (DEBUG off, persistent connections). The catalogue: --products demo products,
--shoppers simulated shoppers with events, segments refreshed, one variant per product and segment made
by the real edit jobs and approved. wrk (Debian's package) then runs, one phase after another:

1. the storefront GET at about --rate requests/s (each of --connections connections waits
   connections/rate between its requests), random products and shoppers, for --seconds;
2. the same as fast as it goes (no wait): the most it serves;
3. POST /api/storefront/events/ with 10 events a request at --event-rate events/s, for --seconds.

Then the buffered events are written by the flush task's function and counted: every accepted event and
every impression the GETs recorded must be in the database, once. Latencies are wrk's (microseconds,
coordinated omission not corrected: at the paced rate the server is far from saturated). The load
generator shares the 2 cores with the server: the figures are a floor.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import log, machine, recreate_database, write_results  # noqa: E402

EVENTS_PER_REQUEST = 10
WRK_SCRIPT = r"""
math.randomseed(%(seed)d)
local products = {%(products)s}
local shoppers = %(shoppers)d
local kinds = {"view", "click", "add_to_cart", "purchase"}
local pause = %(pause_ms)d
local mode = "%(mode)s"
local function shopper()
  return string.format("sim-shopper-%%05d", math.random(shoppers))
end
request = function()
  local product = products[math.random(#products)]
  if mode == "get" then
    return wrk.format("GET", "/api/storefront/products/" .. product .. "/images/?shopper=" .. shopper())
  end
  local events = {}
  for i = 1, %(per_request)d do
    local p = products[math.random(#products)]
    events[i] = string.format('{"kind":"%%s","product":%%d}', kinds[math.random(#kinds)], p)
  end
  local body = '{"shopper":"' .. shopper() .. '","events":[' .. table.concat(events, ",") .. ']}'
  return wrk.format("POST", "/api/storefront/events/", {["Content-Type"] = "application/json"}, body)
end
if pause > 0 then
  delay = function() return pause end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%%d,"duration_us":%%d,"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d,' ..
    '"p50":%%d,"p90":%%d,"p99":%%d,"p999":%%d,"max":%%d,"mean":%%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--rate", type=int, default=200, help="paced storefront requests per second")
    parser.add_argument("--event-rate", type=int, default=1000, help="events per second (10 per request)")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--max-connections", type=int, default=16, help="connections of the unpaced phase")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--products", type=int, default=60)
    parser.add_argument("--shoppers", type=int, default=2000)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/imagegen_load")
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--stem", default=None)
    parser.add_argument(
        "--reuse", action="store_true", help="keep the database and catalogue of the last run (to compare server settings)"
    )
    return parser.parse_args(argv)


def environment(args) -> dict[str, str]:
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.load_settings",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": redis_url,
        "CACHE_URL": redis_url,
        "MEDIA_ROOT": str(Path(tempfile.gettempdir()) / "imagegen-load-media"),
        "PYTHONPATH": str(ROOT),
    }


def prepare(args) -> dict:
    """The catalogue, shoppers, segments and approved variants; in this process, like the shop would."""
    import django

    django.setup()
    import redis
    from django.core.files import File
    from django.core.management import call_command

    from imagegen import services
    from imagegen.models import GeneratedImage, Job
    from imagegen.storefront import services as storefront_services
    from shop.models import Category, Product

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    call_command("migrate", verbosity=0)
    photos = sorted((ROOT / "shop" / "demo_catalogue").glob("*/*.jpg"))
    rng = random.Random(0)
    products = []
    for i, photo in enumerate(rng.sample(photos, min(args.products, len(photos)))):
        category, _ = Category.objects.get_or_create(slug=photo.parent.name, defaults={"name": photo.parent.name})
        product = Product(name=f"{category.name} {i}", slug=f"load-{i}", category=category)
        with photo.open("rb") as fh:
            product.image.save(photo.name, File(fh), save=False)
        product.save()
        products.append(product)
    log(f"{len(products)} products")
    from django.conf import settings as django_settings

    django_settings.IMAGEGEN_EVENT_BUFFER_URL = None  # the set-up writes its events at once
    django_settings.IMAGEGEN_SEGMENTS = args.segments
    from imagegen.storefront.services import impressions, shoppers

    for s in range(args.shoppers):
        taste = rng.randrange(args.segments)
        liked = [p for j, p in enumerate(products) if j % args.segments == taste]
        shopper = f"sim-shopper-{s + 1:05d}"
        key = shoppers.shopper_key(shopper)
        # With the impression token of the original photo, as the storefront sends them: only such events count.
        events = [
            {"kind": rng.choice(["view", "click", "purchase"]), "product": p.pk, "token": impressions.issue(key, p.pk, None)}
            for p in rng.sample(liked, min(4, len(liked)))
        ]
        shoppers.write_events(shoppers.clean_events(shopper, events))
    segments = storefront_services.refresh_segments(seed=0)
    log(f"segments: {segments}")
    jobs = storefront_services.request_variants(send=False)
    failed = 0
    for job in jobs:
        done = services.execute(job.pk)
        if done.state != Job.State.SUCCEEDED:
            # A photo the classical cut-out finds no product in: the storefront shows the original there.
            failed += 1
            log(f"variant job {job.pk} failed: {done.error}")
    approved = services.review(GeneratedImage.objects.filter(storefront_variant__isnull=False), "approved")
    log(f"{approved} variants made and approved, {failed} failed")
    return {"products": [p.pk for p in products], "segments": segments, "variants": approved, "failed_variants": failed}


def reuse() -> dict:
    import django

    django.setup()
    import redis

    from imagegen.models import GeneratedImage
    from imagegen.storefront.models import Segment
    from shop.models import Product

    redis.Redis.from_url(os.environ["REDIS_URL"]).delete("imagegen:events")
    variants = GeneratedImage.objects.filter(storefront_variant__isnull=False, review_state="approved").count()
    return {
        "products": list(Product.objects.values_list("pk", flat=True)),
        "segments": {"segments": Segment.objects.count(), "shoppers": None},
        "variants": variants, "failed_variants": None, "reused": True,
    }


def counts() -> dict:
    from django.db.models import Count

    from imagegen.storefront.models import ShopperEvent

    return dict(ShopperEvent.objects.values_list("kind").annotate(n=Count("id")))


def start_gunicorn(args, env) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{args.port}",
         "--workers", str(args.workers), "--worker-class", "gthread", "--threads", str(args.threads),
         "--log-level", "warning"],
        cwd=ROOT, env=env, start_new_session=True,
    )
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{args.port}/api/schema/", timeout=2)
            return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit("gunicorn did not start")


def wrk(args, products: list[int], *, mode: str, seconds: int, connections: int, pause_ms: int, seed: int) -> dict:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(WRK_SCRIPT % {
        "seed": seed, "products": ",".join(map(str, products)), "shoppers": args.shoppers, "pause_ms": pause_ms,
        "mode": mode, "per_request": EVENTS_PER_REQUEST,
    })
    done = subprocess.run(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "5s", "-s", str(script),
         f"http://127.0.0.1:{args.port}"],
        capture_output=True, text=True, check=True,
    )
    script.unlink()
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT "):])
    result["errors"] = sum(result.pop(k) for k in ("connect", "read", "write", "status", "timeout"))
    result["rate"] = round(result["requests"] / (result["duration_us"] / 1e6), 1)
    for key in ("p50", "p90", "p99", "p999", "max", "mean"):
        result[f"{key}_ms"] = round(result.pop(key) / 1000, 2)
    return result


def paced_pause(args, products: list[int], mode: str, rate: float) -> tuple[int, dict]:
    """The wait between a connection's requests that gives ``rate`` requests/s (each connection runs at
    1 / (wait + latency), so a 5-second calibration run measures the latency to subtract), and that run."""
    nominal = 1000 * args.connections / rate
    calibration = wrk(args, products, mode=mode, seconds=5, connections=args.connections, pause_ms=round(nominal), seed=98)
    latency = 1000 * args.connections / calibration["rate"] - nominal
    return max(0, round(nominal - latency)), calibration


def main(argv=None) -> dict:
    args = parse_args(argv)
    env = environment(args)
    os.environ.update(env)
    if args.reuse:
        setup = reuse()
    else:
        recreate_database(args.database_url)
        setup = prepare(args)
    before = counts()
    server = start_gunicorn(args, env)
    phases = {}
    try:
        wrk(args, setup["products"], mode="get", seconds=5, connections=args.connections, pause_ms=0, seed=99)  # warm-up
        paced_ms, phases["calibration_get"] = paced_pause(args, setup["products"], "get", args.rate)
        phases["storefront_paced"] = wrk(
            args, setup["products"], mode="get", seconds=args.seconds, connections=args.connections, pause_ms=paced_ms, seed=1
        )
        log(f"paced: {phases['storefront_paced']}")
        phases["storefront_max"] = wrk(
            args, setup["products"], mode="get", seconds=args.seconds, connections=args.max_connections, pause_ms=0, seed=2
        )
        log(f"max: {phases['storefront_max']}")
        event_pause, phases["calibration_events"] = paced_pause(
            args, setup["products"], "events", args.event_rate / EVENTS_PER_REQUEST
        )
        phases["events"] = wrk(
            args, setup["products"], mode="events", seconds=args.seconds, connections=args.connections,
            pause_ms=event_pause, seed=3,
        )
        log(f"events: {phases['events']}")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)

    from imagegen.storefront.services import shoppers

    from django.conf import settings as django_settings

    django_settings.IMAGEGEN_EVENT_BUFFER_URL = env["REDIS_URL"]
    started = time.perf_counter()
    flushed = shoppers.flush_events()
    flush_seconds = time.perf_counter() - started
    after = counts()
    gets = sum(
        phases[p]["requests"] - phases[p]["errors"] for p in ("calibration_get", "storefront_paced", "storefront_max")
    )
    # The warm-up's impressions count too: read them from the difference rather than guess.
    impressions = after.get("impression", 0) - before.get("impression", 0)
    # wrk counts the responses it read: requests still in flight when a phase ends were written by the server
    # but are not in wrk's count (at most one a connection). Lost: acknowledged events that are not stored.
    events_sent = sum(
        (phases[p]["requests"] - phases[p]["errors"]) * EVENTS_PER_REQUEST for p in ("calibration_events", "events")
    )
    events_stored = sum(after.get(k, 0) - before.get(k, 0) for k in ("view", "click", "add_to_cart", "purchase"))
    paced = phases["storefront_paced"]
    result = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(threads=args.threads, gunicorn_workers=args.workers, load_generator="wrk 1 thread"),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "setup": {k: v for k, v in setup.items() if k != "products"} | {"products": len(setup["products"])},
        "phases": phases,
        "flush": {"events_written": flushed, "seconds": round(flush_seconds, 2),
                  "events_per_second": round(flushed / flush_seconds, 1) if flush_seconds else None},
        "events": {"acknowledged": events_sent, "stored": events_stored, "lost": max(0, events_sent - events_stored),
                   "in_flight_at_phase_ends": events_stored - events_sent,
                   "rate_sent": phases["events"]["rate"] * EVENTS_PER_REQUEST},
        "impressions": {"gets_answered_during_phases": gets, "stored_including_warmup": impressions},
        "targets": {
            "p99_under_25ms_at_200rps": paced["p99_ms"] < 25 and paced["rate"] >= 0.95 * args.rate and paced["errors"] == 0,
            "events_1000_per_second_none_lost": events_sent <= events_stored
            <= events_sent + 2 * args.connections * EVENTS_PER_REQUEST
            and phases["events"]["rate"] * EVENTS_PER_REQUEST >= 0.95 * args.event_rate
            and phases["events"]["errors"] == 0,
        },
    }
    table = markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, args.stem or f"{result['date']}-storefront-load", result, table)
    return result


def markdown(r: dict) -> str:
    rows = []
    for name, label in (("storefront_paced", "storefront GET, paced"), ("storefront_max", "storefront GET, unpaced"),
                        ("events", f"events POST ({EVENTS_PER_REQUEST} a request)")):
        p = r["phases"][name]
        rows.append(f"| {label} | {p['rate']} | {p['p50_ms']} | {p['p90_ms']} | {p['p99_ms']} | {p['max_ms']} | {p['errors']} |")
    t = r["targets"]
    return (
        f"# Storefront load, {r['date']}\n\n"
        f"gunicorn {r['settings']['workers']} workers x {r['settings']['threads']} threads (gthread), PostgreSQL, Redis cache "
        f"and event buffer, wrk on loopback; {r['setup']['products']} products, {r['settings']['shoppers']} shoppers, "
        f"{r['setup']['segments']['segments']} segments, {r['setup']['variants']} approved variants. 2 shared CPU cores, no GPU.\n\n"
        "| phase | requests/s | p50 ms | p90 ms | p99 ms | max ms | errors |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + f"\n\nEvents (the paced phase and its calibration run): {r['events']['acknowledged']} acknowledged (202), at "
        f"{r['events']['rate_sent']}/s in the paced phase, {r['events']['stored']} stored "
        f"({r['events']['in_flight_at_phase_ends']} of requests in flight when a phase ended), {r['events']['lost']} lost; the flush wrote {r['flush']['events_written']} buffered events (impressions included) "
        f"in {r['flush']['seconds']} s ({r['flush']['events_per_second']}/s). Impressions stored: "
        f"{r['impressions']['stored_including_warmup']} (GETs answered in the measured phases: "
        f"{r['impressions']['gets_answered_during_phases']} incl. calibration, plus the warm-up's).\n\n"
        f"Targets: p99 < 25 ms at 200 requests/s with no errors: {'met' if t['p99_under_25ms_at_200rps'] else 'not met'}; "
        f"1,000 events/s with none lost: {'met' if t['events_1000_per_second_none_lost'] else 'not met'}.\n"
    )


if __name__ == "__main__":
    main()
