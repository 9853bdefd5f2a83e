"""Storefront personalization under abuse and failure (issue 15, items 3, 6 and 7): forged events, the
impression tokens, event retention, a pipeline that must survive deleted products and concurrent
flushers, and variants re-made only when a segment's colour really moved. Real PostgreSQL and Redis."""
import base64
import datetime
import json
import os
import threading
import time

import pytest
from django.conf import settings as django_settings
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from imagegen import services
from imagegen.storefront import services as storefront_services, tasks
from imagegen.conf import settings as imagegen_settings
from imagegen.models import GeneratedImage, Job
from imagegen.storefront.models import ArmStats, Segment, Shopper, ShopperEvent
from imagegen.storefront.services import event_buffer, impressions, personalize, shoppers, taste

from .storefront_client import post_events

SHOPPER = "5b1d9e2a-7c3f-4a61-8e0d-1f2a3b4c5d6e"
OTHER = "9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b"
# The name of the flush lock before item 6; deleting it is how a lock that ran out looks.
OLD_FLUSH_LOCK = "imagegen:events:flush-lock"


def images(product, shopper=SHOPPER):
    return APIClient().get(f"/api/storefront/products/{product.pk}/images/", {"shopper": shopper})


def counted(product):
    stats = ArmStats.objects.filter(product=product)
    return {name: sum(stats.values_list(name, flat=True)) for name in ("impressions", "clicks", "add_to_carts", "purchases")}


# ---- item 3: forged events -------------------------------------------------------------------------------

def test_the_images_endpoint_hands_out_a_token_of_the_shown_image(make_products, unbuffered):
    (product,) = make_products({"hat": 1})
    body = images(product).json()
    assert body["token"], body
    valid, shown = impressions.shown(body["token"], shoppers.shopper_key(SHOPPER), product.pk)
    assert valid and shown == body["shown"]["id"] is None
    assert impressions.shown(body["token"], shoppers.shopper_key(OTHER), product.pk)[0] is False
    assert APIClient().get(f"/api/storefront/products/{product.pk}/images/").json()["token"] is None, "no shopper"


def test_events_without_a_valid_token_are_kept_but_move_neither_the_bandit_nor_the_segments(
    settings, make_products, unbuffered
):
    settings.IMAGEGEN_SEGMENT_MIN_EVENTS = 1
    product, other_product = make_products({"hat": 2})
    own = images(product).json()["token"]
    someone_elses = images(product, OTHER).json()["token"]
    other_products = images(other_product).json()["token"]
    before = counted(product)
    assert before["impressions"] == 2 and before["clicks"] == 0, "the endpoint's own impressions count"
    forged = [
        {"kind": "purchase", "product": product.pk},
        {"kind": "purchase", "product": product.pk, "token": "forged"},
        {"kind": "purchase", "product": product.pk, "token": own[:-3] + "abc"},
        {"kind": "purchase", "product": product.pk, "token": someone_elses},
        {"kind": "purchase", "product": product.pk, "token": other_products},
        {"kind": "click", "product": product.pk, "token": someone_elses},
    ]
    assert post_events(SHOPPER, forged).json() == {"accepted": 6}
    settings.IMAGEGEN_IMPRESSION_TOKEN_SECONDS = -1  # every token is past it
    assert post_events(SHOPPER, [{"kind": "purchase", "product": product.pk, "token": own}]).json() == {"accepted": 1}
    settings.IMAGEGEN_IMPRESSION_TOKEN_SECONDS = 3600
    purchases = ShopperEvent.objects.filter(shopper__key=shoppers.shopper_key(SHOPPER)).exclude(kind="impression")
    assert purchases.count() == 7 and not purchases.filter(verified=True).exists(), "kept, unverified"
    assert counted(product) == before, "the bandit's counts did not move"
    assert storefront_services.refresh_segments() == {"segments": 0, "shoppers": 0}, "nor did the segments"
    # The genuine article counts.
    assert post_events(SHOPPER, [{"kind": "purchase", "product": product.pk, "token": own}]).json() == {"accepted": 1}
    assert counted(product)["purchases"] == 1
    assert storefront_services.refresh_segments()["shoppers"] == 1


def test_a_token_counts_once_per_kind_never_for_impressions_and_only_for_the_image_it_names(
    make_products, unbuffered, catalogue
):
    product, approved = catalogue.product, catalogue.approved
    token = images(product).json()["token"]  # the original photo was shown
    events = [
        {"kind": "click", "product": product.pk, "token": token},
        {"kind": "click", "product": product.pk, "token": token},
        {"kind": "impression", "product": product.pk, "token": token},
        {"kind": "purchase", "product": product.pk, "token": token, "image": approved.pk},
        {"kind": "add_to_cart", "product": product.pk, "token": token},
    ]
    assert post_events(SHOPPER, events).json() == {"accepted": 5}
    rows = ShopperEvent.objects.exclude(kind="impression", verified=True).order_by("id")
    assert [(r.kind, r.verified, r.image_id) for r in rows] == [
        ("click", True, None), ("click", False, None), ("impression", False, None),
        ("purchase", False, approved.pk), ("add_to_cart", True, None),
    ]
    (stats,) = ArmStats.objects.filter(product=product)
    assert (stats.arm, stats.impressions, stats.clicks, stats.add_to_carts, stats.purchases) == (ArmStats.ORIGINAL, 1, 1, 1, 0)


@pytest.fixture
def catalogue(make_products):
    """A product with an approved and a pending generated image, and another product with an approved one."""
    from types import SimpleNamespace

    from django.core.files.base import ContentFile

    product, other = make_products({"hat": 2})

    def image(of, state):
        made = GeneratedImage(product=of, seed=len(state) + of.pk, review_state=state)
        with open(of.image.path, "rb") as fh:
            made.image.save("x.png", ContentFile(fh.read()), save=True)
        return made

    return SimpleNamespace(
        product=product, approved=image(product, "approved"), pending=image(product, "pending"),
        other_product=other, other=image(other, "approved"),
    )


@pytest.mark.parametrize("case", ["unknown product", "unknown image", "pending image", "another product's image"])
def test_unknown_products_and_unapproved_or_foreign_images_get_one_error_that_tells_nothing(
    make_products, buffer, catalogue, case
):
    product, approved, extra = catalogue.product, catalogue.approved, vars(catalogue)
    event = {
        "unknown product": {"kind": "click", "product": 999999},
        "unknown image": {"kind": "click", "product": product.pk, "image": 999999},
        "pending image": {"kind": "click", "product": product.pk, "image": extra["pending"].pk},
        "another product's image": {"kind": "click", "product": product.pk, "image": extra["other"].pk},
    }[case]
    reply = post_events(SHOPPER, [{"kind": "view", "product": product.pk, "image": approved.pk}, event])
    assert reply.status_code == 400
    assert reply.json() == {"events": ["Unknown product or image."]}, "no ids, no hint which"
    assert buffer.llen(shoppers.BUFFER_KEY) == 0 and not ShopperEvent.objects.exists()


def test_old_events_are_purged_in_chunks_by_a_daily_task(settings, make_products, monkeypatch):
    (product,) = make_products({"hat": 1})
    shopper = Shopper.objects.create(key=shoppers.shopper_key(SHOPPER))
    now = timezone.now()
    ShopperEvent.objects.bulk_create(
        [ShopperEvent(shopper=shopper, product=product, kind="view", at=now - datetime.timedelta(days=91, hours=i)) for i in range(5)]
        + [ShopperEvent(shopper=shopper, product=product, kind="view", at=now - datetime.timedelta(days=89))]
    )
    settings.IMAGEGEN_EVENT_RETENTION_DAYS = None
    assert tasks.purge_events() == 0 and ShopperEvent.objects.count() == 6, "None keeps them forever"
    settings.IMAGEGEN_EVENT_RETENTION_DAYS = 90
    monkeypatch.setattr(shoppers, "PURGE_CHUNK", 2)
    assert tasks.purge_events() == 5
    assert list(ShopperEvent.objects.values_list("at", flat=True)) == [now - datetime.timedelta(days=89)]
    schedule = {entry["task"]: entry["schedule"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["imagegen.purge_events"] == 86400.0


def test_the_schema_documents_the_tokens():
    from drf_spectacular.generators import SchemaGenerator

    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    assert "token" in components["StorefrontImages"]["properties"]
    assert "token" in components["Event"]["properties"]


# ---- item 6: a jammed pipeline ---------------------------------------------------------------------------

def buffered(product, n, *, start=0, image=None):
    """``n`` verified clicks of ``product`` as the storefront would have buffered them, each at its own time."""
    base = timezone.now() - datetime.timedelta(hours=1)
    return [json.dumps({
        "key": shoppers.shopper_key(SHOPPER), "kind": "click", "product": product.pk, "image": image,
        "at": (base + datetime.timedelta(seconds=start + i)).isoformat(), "verified": True,
    }) for i in range(n)]


def test_events_of_a_product_or_image_deleted_after_they_were_accepted_are_dropped(
    make_products, buffer, transactional_db, catalogue, caplog
):
    product, approved, gone_product = catalogue.product, catalogue.approved, catalogue.other_product
    buffer.rpush(shoppers.BUFFER_KEY, *buffered(product, 2), *buffered(gone_product, 3), *buffered(product, 1, image=approved.pk))
    gone_product.delete()
    approved.delete()
    assert storefront_services.flush_events() == 6, "the whole buffer was taken"
    assert event_buffer.pending_events(buffer) == 0, "nothing is left to retry forever"
    assert ShopperEvent.objects.filter(product=product).count() == 2
    assert "4 storefront events dropped" in caplog.text
    assert shoppers.write_events([json.loads(e) for e in buffered(gone_product, 1)]) == shoppers.Written(0, 1)


def test_deleting_a_product_forgets_its_cached_storefront_state(make_products, unbuffered, django_capture_on_commit_callbacks):
    (product,) = make_products({"hat": 1})
    url = f"/api/storefront/products/{product.pk}/images/"
    assert APIClient().get(url, {"shopper": SHOPPER}).status_code == 200  # its arms are cached now
    with django_capture_on_commit_callbacks(execute=True):
        product.delete()
    reply = APIClient().get(url, {"shopper": SHOPPER})
    assert reply.status_code == 404 and reply.json() == {"detail": "No such product."}


def _waiting_on_locks(n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0] >= n:
                return
            time.sleep(0.05)
    raise AssertionError(f"{n} flushers never waited on the product's lock")


def _in_thread(target, errors):
    def run():
        try:
            target()
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - a connection the test killed
                pass

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _holding_the_product(product, held: threading.Event, release: threading.Event, errors):
    """A transaction holding the product's row lock: flushers block on it until ``release``."""
    def hold():
        with transaction.atomic():
            type(product).objects.select_for_update().get(pk=product.pk)
            held.set()
            release.wait(30)

    thread = _in_thread(hold, errors)
    assert held.wait(10)
    return thread


def _a_flush_stuck_on_the_product(settings, make_products, buffer, events: int):
    """``events`` buffered clicks and a flusher (batches of 10) blocked on the product's row lock until
    ``release`` is set: (product, errors, release, holder thread, flusher thread)."""
    settings.IMAGEGEN_EVENT_FLUSH_BATCH = 10
    (product,) = make_products({"hat": 1})
    buffer.rpush(shoppers.BUFFER_KEY, *buffered(product, events))
    errors: list = []
    held, release = threading.Event(), threading.Event()
    holder = _holding_the_product(product, held, release, errors)
    flusher = _in_thread(storefront_services.flush_events, errors)
    _waiting_on_locks(1)
    return product, errors, release, holder, flusher


def test_two_flushers_at_once_take_disjoint_batches_neither_losing_nor_double_counting(
    settings, make_products, buffer, transactional_db
):
    product, errors, release, holder, first = _a_flush_stuck_on_the_product(settings, make_products, buffer, 30)
    buffer.delete(OLD_FLUSH_LOCK)  # the first flush outlives its lock
    second = _in_thread(storefront_services.flush_events, errors)
    _waiting_on_locks(2)
    release.set()
    for thread in (holder, first, second):
        thread.join(30)
    storefront_services.flush_events()
    times = list(ShopperEvent.objects.values_list("at", flat=True))
    assert (len(times), len(set(times))) == (30, 30), "every event exactly once"
    assert counted(product)["clicks"] == 30
    assert event_buffer.pending_events(buffer) == 0
    assert errors == []


def test_a_batch_left_by_a_killed_flusher_is_written_once_by_the_next_flush(
    settings, make_products, buffer, transactional_db
):
    product, errors, release, holder, doomed = _a_flush_stuck_on_the_product(settings, make_products, buffer, 15)
    assert event_buffer.pending_events(buffer) == 15 and buffer.llen(shoppers.BUFFER_KEY) == 5
    # A live flusher's batch is not taken from it, however long it takes.
    assert event_buffer._recover(buffer) == 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s",
            [event_buffer.ADVISORY_CLASS],
        )
    doomed.join(30)
    release.set()
    holder.join(30)
    assert len(errors) == 1, errors  # the killed flusher's own error
    assert not ShopperEvent.objects.exists(), "its transaction was rolled back"
    assert storefront_services.flush_events() == 15
    times = list(ShopperEvent.objects.values_list("at", flat=True))
    assert len(times) == len(set(times)) == 15
    assert event_buffer.pending_events(buffer) == 0


# ---- item 7: variants re-made on a real colour change, in batches ----------------------------------------

def test_delta_e():
    assert personalize.delta_e("#000000", "#ffffff") == pytest.approx(100, abs=0.01)
    assert personalize.delta_e("#808080", "#808080") == 0
    assert personalize.delta_e("#808080", "not a colour") == float("inf")


def _segments_with_variants(settings, make_products):
    settings.IMAGEGEN_SEGMENTS = 2
    products = make_products({"hat": 2, "dress": 2})
    rng_kinds = ["click", "purchase", "view"]
    for group, chosen in enumerate((products[:2], products[2:])):
        for i in range(3):
            shopper = f"group{group}-shopper-{i:04d}"
            key = shoppers.shopper_key(shopper)
            events = [{"kind": rng_kinds[(i + j) % 3], "product": p.pk, "token": impressions.issue(key, p.pk, None)}
                      for j, p in enumerate(chosen)]
            shoppers.write_events(shoppers.clean_events(shopper, events))
    storefront_services.refresh_segments(seed=0)
    return products


def test_a_centroid_that_drifts_a_little_remakes_nothing(settings, make_products, unbuffered):
    _segments_with_variants(settings, make_products)
    for job in storefront_services.request_variants(send=False):
        assert services.execute(job.pk).state == Job.State.SUCCEEDED
    segment = Segment.objects.get(index=0)
    colour = taste.backdrop_colour(segment)
    segment.centroid = [*segment.centroid[:3], segment.centroid[3] + 0.02, *segment.centroid[4:]]  # L* + 2
    segment.save()
    assert taste.backdrop_colour(segment) != colour, "the hex colour changed"
    assert 0 < personalize.delta_e(taste.backdrop_colour(segment), colour) < imagegen_settings.VARIANT_REMAKE_DELTA_E
    assert storefront_services.request_variants(send=False) == [], "no job for a change nobody sees"
    settings.IMAGEGEN_VARIANT_REMAKE_DELTA_E = 1.0
    assert len(storefront_services.request_variants(send=False)) == 4, "past the threshold: every product of that segment"


def test_variant_jobs_go_out_in_batched_run_jobs_messages(settings, make_products, unbuffered, django_capture_on_commit_callbacks):
    import redis

    _segments_with_variants(settings, make_products)
    settings.IMAGEGEN_BULK_BATCH_SIZE = 3
    settings.IMAGEGEN_QUEUE = "helper-a-variants-test"
    broker = redis.Redis.from_url(os.environ["REDIS_URL"])
    broker.delete(settings.IMAGEGEN_QUEUE)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            jobs = storefront_services.request_variants()
        messages = [json.loads(raw) for raw in broker.lrange(settings.IMAGEGEN_QUEUE, 0, -1)]
    finally:
        broker.delete(settings.IMAGEGEN_QUEUE)
    assert len(jobs) == 8
    assert [m["headers"]["task"] for m in messages] == ["imagegen.run_jobs"] * 3, "8 jobs, 3 messages"
    sent = [job_id for m in messages for job_id in json.loads(base64.b64decode(m["body"]))[0][0]]
    assert sorted(sent) == sorted(job.pk for job in jobs)
