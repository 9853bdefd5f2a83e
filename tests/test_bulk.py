"""Bulk operations on PostgreSQL and Redis: a selection of hundreds of products becomes one job per product,
sent as run_jobs batches (counted in private Redis queues no worker reads), never twice; cancelling stops
it; a small one runs to the end on the real Celery worker; the API over real HTTP; the admin in Chromium."""
import json
import math
import os
import time
from datetime import timedelta

import pytest
import requests
from django.core.exceptions import ValidationError
from django.utils import timezone

from imagegen import services
from imagegen.models import BulkOperation, GeneratedImage, Job
from imagegen.jobcore.groups import settle_running
from imagegen.jobcore.progress import ProgressReporter
from imagegen.services import bulk, bulk_report

from .test_api_security import PASSWORD, make_user  # noqa: F401  (make_user is a fixture)
from .test_browser import log_in

pytestmark = pytest.mark.slow



# --- helpers ---------------------------------------------------------------------------------------


@pytest.fixture
def queues(settings, redis_url):
    """The inference and light queues, renamed to private ones that no worker consumes; removed after."""
    from kombu import Exchange, Queue

    from shop.celery import app

    made = {}
    for role in ("QUEUE", "LIGHT_QUEUE"):
        name = f"imagegen-bulk-{role.lower()}-{os.getpid()}"
        setattr(settings, f"IMAGEGEN_{role}", name)
        made[role] = Queue(name, Exchange(name), routing_key=name)
        with app.connection_for_write() as conn:
            made[role](conn.default_channel).declare()
            made[role](conn.default_channel).purge()
    yield made
    with app.connection_for_write() as conn:
        for queue in made.values():
            bound = queue(conn.default_channel)
            bound.declare()  # the channel must know the binding to remove it from Redis as well
            bound.delete()


def messages_in(queue) -> list[dict]:
    """Every message waiting in ``queue`` (task name and arguments), taken off it."""
    from shop.celery import app

    found = []
    with app.connection_for_write() as conn:
        bound = queue(conn.default_channel)
        while (message := bound.get(no_ack=True)) is not None:
            args, _kwargs, _embed = json.loads(message.body)
            found.append({"task": message.headers["task"], "args": args})
    return found


def many_products(n: int, category: str = "dress") -> list:
    """``n`` products without photos, made in one INSERT (queueing does not read photos)."""
    from shop.models import Category, Product

    cat, _ = Category.objects.get_or_create(slug=category, defaults={"name": category.title()})
    return Product.objects.bulk_create(
        Product(name=f"{category} {i}", slug=f"bulk-{category}-{i}", category=cat) for i in range(n)
    )


def products_qs(products):
    from shop.models import Product

    return Product.objects.filter(pk__in=[p.pk for p in products])


# --- expansion, batches, idempotency ----------------------------------------------------------------


def test_request_stores_the_selection_and_sends_one_expansion_only(queues, settings, make_user, django_capture_on_commit_callbacks):
    products = many_products(600)
    user = make_user("alice", "imagegen.generate_images")
    with django_capture_on_commit_callbacks(execute=True):
        operation = bulk.request_bulk_generation(products_qs(products), count=2, seed=100, user=user)
    assert not Job.objects.exists(), "no job is made in the request"
    assert operation.total == 600 and operation.product_ids == sorted(p.pk for p in products)
    assert operation.state == BulkOperation.State.QUEUED and operation.requested_by == user
    assert messages_in(queues["LIGHT_QUEUE"]) == [{"task": "imagegen.expand_bulk", "args": [operation.pk]}]
    assert messages_in(queues["QUEUE"]) == []


def test_expansion_makes_one_job_per_product_in_batches_and_never_twice(queues, settings, db):
    settings.IMAGEGEN_BULK_CHUNK_SIZE = 250
    settings.IMAGEGEN_BULK_BATCH_SIZE = 16
    products = many_products(600)
    operation = bulk.request_bulk_generation(products_qs(products), count=3, seed=1000)

    bulk.expand(operation.pk)

    operation.refresh_from_db()
    assert operation.state == BulkOperation.State.RUNNING and operation.expanded == 600 and operation.expanded_at
    jobs = list(Job.objects.filter(bulk=operation).order_by("product_id"))
    assert [j.product_id for j in jobs] == sorted(p.pk for p in products)
    # Product i of the selection (in order of id) gets seed + i * count.
    assert [j.parameters for j in jobs[:2]] == [{"count": 3, "seed": 1000, "kind": "cgan"}, {"count": 3, "seed": 1003, "kind": "cgan"}]
    assert {j.parameters["seed"] for j in jobs} == {1000 + 3 * i for i in range(600)}
    assert all(j.state == Job.State.QUEUED and j.kind == Job.Kind.GENERATE for j in jobs)
    sent = messages_in(queues["QUEUE"])
    # Three chunks (250, 250, 100), each cut into batches of 16: 16 + 16 + 7 messages.
    assert len(sent) == 2 * math.ceil(250 / 16) + math.ceil(100 / 16) == 39
    assert {m["task"] for m in sent} == {"imagegen.run_jobs"}
    batched = [job_id for m in sent for job_id in m["args"][0]]
    assert sorted(batched) == sorted(j.pk for j in jobs) and max(len(m["args"][0]) for m in sent) == 16

    # A duplicate delivery of the expansion makes nothing and sends nothing.
    bulk.expand(operation.pk)
    assert Job.objects.filter(bulk=operation).count() == 600
    assert messages_in(queues["QUEUE"]) == []


def test_an_expansion_that_died_half_way_resumes_without_making_a_job_twice(queues, settings, db):
    settings.IMAGEGEN_BULK_CHUNK_SIZE = 100
    products = many_products(350)
    operation = bulk.request_bulk_generation(products_qs(products), count=1, seed=0)
    BulkOperation.objects.filter(pk=operation.pk).update(state=BulkOperation.State.EXPANDING)
    first, more = bulk._expand_chunk(operation.pk)  # the worker dies after this chunk, before sending it
    assert len(first) == 100 and more
    # One product disappears before its chunk: it is skipped, not a failure of the whole chunk.
    products[-1].delete()

    bulk.expand(operation.pk)

    operation.refresh_from_db()
    assert operation.expanded == 350 and operation.skipped == 1 and operation.state == BulkOperation.State.RUNNING
    assert Job.objects.filter(bulk=operation).count() == 349
    assert Job.objects.filter(bulk=operation).values("product").distinct().count() == 349
    sent = [job_id for m in messages_in(queues["QUEUE"]) for job_id in m["args"][0]]
    assert not set(sent) & set(first), "the resumed expansion sends only the jobs it made"
    assert len(sent) == 249


def test_cancelling_midway_cancels_the_queued_jobs_and_stops_the_expansion(queues, settings, db):
    settings.IMAGEGEN_BULK_CHUNK_SIZE = 200
    products = many_products(500)
    operation = bulk.request_bulk_generation(products_qs(products), count=1, seed=0)
    BulkOperation.objects.filter(pk=operation.pk).update(state=BulkOperation.State.EXPANDING)
    made, _ = bulk._expand_chunk(operation.pk)
    running = Job.objects.get(pk=made[0])
    Job.objects.filter(pk=running.pk).update(state=Job.State.RUNNING, attempts=1)

    assert bulk.cancel(operation)
    assert operation.state == BulkOperation.State.CANCELLED and operation.finished_at
    bulk.expand(operation.pk)  # the expansion's next step finds it cancelled

    assert Job.objects.filter(bulk=operation).count() == 200
    assert set(Job.objects.filter(bulk=operation).values_list("state", flat=True)) == {Job.State.CANCELLED}
    # The running one stops at its next progress report.
    with pytest.raises(services.JobCancelled):
        ProgressReporter(running.pk, attempt=1)(50, "working")
    report = bulk_report.report(operation)
    assert report["counts"]["cancelled"] == 200 and report["jobs"] == 200
    assert not bulk.cancel(operation), "cancelling twice changes nothing"


def test_an_operation_settles_when_its_last_job_finishes(queues, db):
    products = many_products(4)
    operation = bulk.request_bulk_generation(products_qs(products), count=1, seed=0)
    bulk.expand(operation.pk)
    jobs = list(Job.objects.filter(bulk=operation).order_by("pk"))
    Job.objects.filter(pk__in=[j.pk for j in jobs[:3]]).update(state=Job.State.SUCCEEDED)
    assert settle_running() == 0, "one job is still queued"
    Job.objects.filter(pk=jobs[3].pk).update(state=Job.State.FAILED, error="No photo.")
    assert settle_running() == 1
    operation.refresh_from_db()
    assert operation.state == BulkOperation.State.SUCCEEDED and operation.finished_at
    report = bulk_report.report(operation)
    assert report["progress"] == 100 and report["counts"]["succeeded"] == 3
    assert report["failure_reasons"] == [{"error": "No photo.", "count": 1}]


def test_bad_input_is_refused_and_stores_nothing(queues, make_user, settings, db):
    products = products_qs(many_products(5))
    for kwargs, field in [({"count": 0}, "count"), ({"count": 99}, "count"), ({"seed": -1}, "seed"),
                          ({"seed": 2**31 - 3}, "seed"), ({"kind": "nope"}, "kind")]:
        with pytest.raises(ValidationError) as refused:
            bulk.request_bulk_generation(products, **kwargs)
        assert field in refused.value.message_dict
    with pytest.raises(ValidationError, match="No products selected"):
        bulk.request_bulk_generation(products.none())
    assert not BulkOperation.objects.exists() and not Job.objects.exists()


def test_bulk_jobs_are_not_capped_one_by_one_but_operations_are(queues, make_user, settings, db):
    settings.IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER = 5
    settings.IMAGEGEN_MAX_ACTIVE_BULK_OPERATIONS_PER_USER = 1
    user = make_user("alice", "imagegen.generate_images")
    products = many_products(30)
    operation = bulk.request_bulk_generation(products_qs(products), count=1, user=user)
    bulk.expand(operation.pk)
    assert Job.objects.filter(requested_by=user, state=Job.State.QUEUED).count() == 30
    # 30 queued bulk jobs, yet the user may still ask for a single product's images.
    services.request_generation(products[0], count=1, user=user, send=False)
    with pytest.raises(bulk.TooManyBulkOperations, match="IMAGEGEN_MAX_ACTIVE_BULK_OPERATIONS_PER_USER = 1"):
        bulk.request_bulk_generation(products_qs(products), count=1, user=user)
    assert BulkOperation.objects.count() == 1
    bulk.cancel(operation)
    bulk.request_bulk_generation(products_qs(products), count=1, user=user)
    assert BulkOperation.objects.count() == 2


def test_reconciler_resends_stale_bulk_jobs_as_batches_and_stalled_expansions(queues, settings, db):
    settings.IMAGEGEN_BULK_BATCH_SIZE = 16
    products = many_products(100)
    operation = bulk.request_bulk_generation(products_qs(products), count=1, seed=0)
    bulk.expand(operation.pk)
    messages_in(queues["QUEUE"])  # the messages were lost
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(bulk=operation).update(updated_at=long_ago)
    stalled = bulk.request_bulk_generation(products_qs(products[:10]), count=1, seed=0)
    BulkOperation.objects.filter(pk=stalled.pk).update(updated_at=long_ago)

    done = services.reconcile()

    assert done["sent"] == 0 and done["bulk_batches"] == math.ceil(100 / 16) and done["bulk_expansions"] == 1
    sent = messages_in(queues["QUEUE"])
    assert len(sent) == 7 and {m["task"] for m in sent} == {"imagegen.run_jobs"}
    assert sorted(i for m in sent for i in m["args"][0]) == sorted(Job.objects.filter(bulk=operation).values_list("pk", flat=True))
    assert messages_in(queues["LIGHT_QUEUE"]) == [{"task": "imagegen.expand_bulk", "args": [stalled.pk]}]
    # The rows were touched: the next run does not send them again at once.
    assert services.reconcile()["bulk_batches"] == 0


def test_queued_bulk_jobs_of_a_moving_operation_are_not_resent(queues, settings, db):
    """10,000 jobs waiting their turn behind busy workers are not lost; re-sending them would pile up."""
    products = many_products(40)
    operation = bulk.request_bulk_generation(products_qs(products), count=1, seed=0)
    bulk.expand(operation.pk)
    messages_in(queues["QUEUE"])
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(bulk=operation).update(updated_at=long_ago)
    first = Job.objects.filter(bulk=operation).order_by("pk").first()
    Job.objects.filter(pk=first.pk).update(state=Job.State.SUCCEEDED, updated_at=timezone.now())
    assert services.reconcile()["bulk_batches"] == 0
    assert messages_in(queues["QUEUE"]) == []


# --- the real worker -------------------------------------------------------------------------------


def test_a_small_bulk_runs_to_the_end_on_the_worker(worker, trained_version, settings, make_user):
    # The test worker reads "gpu,train": the expansion goes there too, and sends its batches to "gpu".
    from imagegen.conf import settings as conf

    settings.IMAGEGEN_LIGHT_QUEUE = conf.QUEUE
    products = list(trained_version.test_products) + many_products(1, category="hat")  # no generator for hats
    user = make_user("alice", "imagegen.generate_images")
    operation = bulk.request_bulk_generation(products_qs(products), count=2, seed=7, user=user)

    deadline = time.monotonic() + 300
    while not operation.is_finished and time.monotonic() < deadline:
        time.sleep(0.5)
        operation.refresh_from_db()
    assert operation.state == BulkOperation.State.SUCCEEDED, (operation.state, bulk_report.report(operation))
    report = bulk_report.report(operation)
    assert report["counts"] == {"queued": 0, "running": 0, "succeeded": 12, "failed": 1, "cancelled": 0}
    assert report["images"] == 24 and report["progress"] == 100
    assert len(report["failure_reasons"]) == 1 and report["failure_reasons"][0]["count"] == 1
    assert "No trained generator covers the category “hat”" in report["failure_reasons"][0]["error"]
    order = sorted(p.pk for p in products)
    for image in GeneratedImage.objects.filter(job__bulk=operation):
        i = order.index(image.product_id)
        assert image.seed in (7 + 2 * i, 7 + 2 * i + 1)


# --- the API over real HTTP ------------------------------------------------------------------------


def test_api_starts_follows_and_cancels_a_bulk_operation(live_server, queues, make_user, transactional_db):
    from shop.models import Category

    many_products(120, category="dress")
    many_products(30, category="shoes")
    alice = make_user("alice", "imagegen.generate_images")
    bob = make_user("bob", "imagegen.generate_images")
    supervisor = make_user("carol", "imagegen.view_job")
    api = live_server.url + "/api/bulk"

    def as_user(user) -> requests.Session:
        s = requests.Session()
        s.auth = (user.username, PASSWORD)
        return s

    started = time.perf_counter()
    reply = as_user(alice).post(f"{api}/generate/", json={"category": "shoes", "count": 2, "seed": 10})
    assert reply.status_code == 202, reply.text
    body = reply.json()
    assert reply.headers["Location"] == body["url"] == f"{live_server.url}/api/bulk/{body['id']}/"
    assert body["state"] == "queued" and body["total"] == 30 and body["jobs"] == 0 and body["progress"] == 0
    assert messages_in(queues["LIGHT_QUEUE"]) == [{"task": "imagegen.expand_bulk", "args": [body["id"]]}]
    assert time.perf_counter() - started < 30  # sanity only; the latency is measured in bench/bulk.py

    bulk.expand(body["id"])
    seen = as_user(alice).get(body["url"]).json()
    assert seen["state"] == "running" and seen["jobs"] == 30 and seen["counts"]["queued"] == 30
    assert as_user(bob).get(body["url"]).status_code == 403, "someone else's operation"
    assert as_user(supervisor).get(body["url"]).status_code == 200
    assert as_user(bob).post(f"{body['url']}cancel/").status_code == 403
    assert requests.get(body["url"]).status_code in (401, 403)

    cancelled = as_user(alice).post(f"{body['url']}cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["counts"]["cancelled"] == 30

    # Bad input: a clear 400 naming what is wrong, and nothing stored.
    for bad, field in [({"product_ids": [999999], "count": 1}, "product_ids"), ({"category": "nothing"}, "category"),
                       ({"all": True, "category": "dress"}, "non_field_errors"), ({}, "non_field_errors"),
                       ({"all": True, "count": 0}, "count")]:
        refused = as_user(alice).post(f"{api}/generate/", json=bad)
        assert refused.status_code == 400 and field in refused.json(), (bad, refused.text)
    assert BulkOperation.objects.count() == 1
    everything = as_user(alice).post(f"{api}/generate/", json={"all": True, "count": 1})
    assert everything.status_code == 202 and everything.json()["total"] == 150
    assert Category.objects.count() == 2


# --- the admin in a real browser -------------------------------------------------------------------


@pytest.mark.browser
def test_admin_select_all_becomes_a_bulk_operation_and_cancels_in_the_browser(
    live_server, queues, staff_user, browser_page, settings, output_dir, transactional_db
):
    settings.IMAGEGEN_BULK_THRESHOLD = 50
    products = many_products(130)
    page = browser_page
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/shop/product/")
    page.check("#action-toggle")
    page.click(".question a")  # Django's "Select all 130 products"
    page.select_option("select[name=action]", label="Generate images")
    page.click("button[name=index]")
    page.wait_for_selector("#imagegen-action-form")
    assert "130 products selected" in page.inner_text("#imagegen-action-form")
    page.fill("#id_count", "2")
    page.fill("#id_seed", "3")
    page.click("input[name=apply]")
    assert "Started bulk operation" in page.inner_text(".messagelist")
    operation = BulkOperation.objects.get()
    assert operation.total == 130 and operation.parameters == {"count": 2, "seed": 3, "kind": "cgan"}
    assert operation.product_ids == sorted(p.pk for p in products) and not Job.objects.exists()

    bulk.expand(operation.pk)  # what the light worker does
    page.click("a.imagegen-bulk-link")
    page.wait_for_selector("#imagegen-bulk-report")
    assert page.inner_text(".imagegen-count-queued") == "130"
    page.screenshot(path=str(output_dir / "bulk-operation.png"), full_page=True)

    page.click("#imagegen-bulk-cancel input[type=submit]")
    page.wait_for_selector(".messagelist")
    assert f"Cancelled bulk operation #{operation.pk}" in page.inner_text(".messagelist")
    assert page.inner_text(".imagegen-count-cancelled") == "130"
    operation.refresh_from_db()
    assert operation.state == BulkOperation.State.CANCELLED
    assert set(Job.objects.values_list("state", flat=True)) == {Job.State.CANCELLED}

    page.click("text=See its jobs")
    assert "130 jobs" in page.inner_text(".paginator")
    page.goto(f"{live_server.url}/admin/imagegen/bulkoperation/")
    assert page.locator(".imagegen-state-cancelled").count() == 1


def test_cancel_in_the_admin_needs_a_post_with_csrf_and_the_permission(queues, make_user, db):
    from django.test import Client

    owner = make_user("alice", "imagegen.generate_images", "imagegen.view_bulkoperation")
    other = make_user("bob", "imagegen.generate_images", "imagegen.view_bulkoperation")
    operation = bulk.request_bulk_generation(products_qs(many_products(3)), count=1, user=owner)
    url = f"/admin/imagegen/bulkoperation/{operation.pk}/cancel/"

    client = Client()
    client.force_login(other)
    assert client.post(url).status_code == 403
    client.force_login(owner)
    assert client.get(url).status_code == 405
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(owner)
    assert strict.post(url).status_code == 403
    operation.refresh_from_db()
    assert operation.state == BulkOperation.State.QUEUED
    page = client.get(f"/admin/imagegen/bulkoperation/{operation.pk}/change/")
    assert page.status_code == 200 and b"imagegen-bulk-cancel" in page.content
    assert client.post(url).status_code == 302
    operation.refresh_from_db()
    assert operation.state == BulkOperation.State.CANCELLED
    assert b"imagegen-bulk-cancel" not in client.get(f"/admin/imagegen/bulkoperation/{operation.pk}/change/").content


# --- the benchmark -------------------------------------------------------------------------------------


def test_bulk_benchmark_quick_run_queues_every_job_once(tmp_path):
    """bench/bulk.py end to end on a small catalogue (gunicorn, a light Celery worker, its own database):
    the figures exist and every product got one job and its messages (the timings are the full run's)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "bench/bulk.py", "--quick", "--products", "300", "--samples", "10", "--warmup", "60",
         "--database-url", "postgres://postgres@127.0.0.1:5432/imagegen_bulk_smoke", "--redis-db", "13",
         "--port", "8768", "--timeout", "120", "--out", str(out)],
        cwd=root, capture_output=True, text=True, timeout=400, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [json_path] = out.glob("*-bulk.json")
    result = json.loads(json_path.read_text())
    assert result["checks_passed"] and result["queued"]["jobs"] == 300
    assert result["queued"]["messages"] == result["queued"]["expected_messages"] == math.ceil(300 / 16)
    assert result["operation"]["distinct_seeds"] == 300 and result["action"]["response_ms"] > 0
    for phase in ("idle_before", "idle_after"):
        for request in ("product_changelist", "bulk_progress"):
            figures = result["latency"][phase][request]
            assert figures["n"] == 5 and 0 < figures["p50_ms"] <= figures["p99_ms"], (phase, request, figures)
    assert (out / json_path.name.replace(".json", ".md")).read_text().startswith("# Bulk operation")
