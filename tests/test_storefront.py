"""Storefront personalization: pseudonymous shoppers, buffered events on real Redis, opt-out, segments,
personalized variants through the edit jobs, the bandit, and the public endpoint's fallbacks, over real
HTTP against the live server."""
import datetime
import random

import pytest
import requests
from django.utils import timezone
from rest_framework.test import APIClient

from imagegen import services
from imagegen.models import GeneratedImage, Job
from imagegen.storefront import services as storefront_services
from imagegen.storefront.models import ArmStats, Segment, Shopper, ShopperEvent, Variant
from imagegen.storefront.services import bandit, event_buffer, impressions, serving, shoppers, taste, writing

from .storefront_client import post_events

SHOPPER = "3f2b8c1e-6d4a-4e0b-9a77-0c1d2e3f4a5b"


def with_tokens(shopper, events):
    """The events as a storefront sends them after showing each product's original photo (verified)."""
    key = shoppers.shopper_key(shopper)
    return [{**e, "token": impressions.issue(key, e["product"], e.get("image"))} for e in events]


# ---- shoppers and events ----------------------------------------------------------------------------------

def test_only_a_keyed_hash_of_the_shopper_id_is_stored(settings, make_products, unbuffered):
    (product,) = make_products({"hat": 1})
    assert post_events(SHOPPER, [{"kind": "view", "product": product.pk}]).status_code == 202
    (stored,) = Shopper.objects.all()
    assert stored.key == shoppers.shopper_key(SHOPPER) and SHOPPER not in stored.key and len(stored.key) == 64
    settings.IMAGEGEN_SHOPPER_HASH_KEY = "another-key"
    assert shoppers.shopper_key(SHOPPER) != stored.key, "the hash is keyed"


@pytest.mark.parametrize(
    ("shopper", "events", "reason"),
    [
        ("jane.doe@example.com", None, "e-mail"),
        ("Jane Doe", None, "never a name"),
        ("short", None, "8 to 128"),
        ("x" * 129, None, "8 to 128"),
        (12345678, None, "8 to 128"),
        (SHOPPER, [], "1 to 100"),
        (SHOPPER, "view", "1 to 100"),
        (SHOPPER, [{"kind": "like", "product": "P"}], "kind must be"),
        (SHOPPER, [{"kind": "view"}], "product must be"),
        (SHOPPER, [{"kind": "view", "product": True}], "product must be"),
        (SHOPPER, [{"kind": "view", "product": "P", "price": 3}], "an object with"),
        (SHOPPER, [{"kind": "view", "product": 999999}], "Unknown product"),
        (SHOPPER, [{"kind": "view", "product": "P", "at": "yesterday"}], "ISO 8601"),
        (SHOPPER, [{"kind": "view", "product": "P", "at": "2026-01-01T00:00:00"}], "time zone"),
        (SHOPPER, [{"kind": "view", "product": "P", "at": "2031-01-01T00:00:00+00:00"}], "last 7 days"),
        (SHOPPER, [{"kind": "view", "product": "P"}, {"kind": "click", "product": "P", "image": 999999}], "Unknown product or image."),
        (SHOPPER, [{"kind": "view", "product": "P", "token": 12}], "token must be"),
    ],
)
def test_malformed_events_are_a_400_and_store_nothing(make_products, buffer, shopper, events, reason):
    (product,) = make_products({"hat": 1})
    if events is None:
        events = [{"kind": "view", "product": product.pk}]
    elif isinstance(events, list):
        events = [{k: (product.pk if v == "P" else v) for k, v in e.items()} for e in events]
    reply = post_events(shopper, events)
    assert reply.status_code == 400, reply.json()
    assert reason in str(reply.json()), reply.json()
    assert buffer.llen(shoppers.BUFFER_KEY) == 0 and not Shopper.objects.exists() and not ShopperEvent.objects.exists()


def test_too_many_events_in_one_request_are_refused(make_products, buffer):
    (product,) = make_products({"hat": 1})
    reply = post_events(SHOPPER, [{"kind": "view", "product": product.pk}] * 101)
    assert reply.status_code == 400 and buffer.llen(shoppers.BUFFER_KEY) == 0


def test_events_are_buffered_in_redis_then_written_in_bulk_with_their_ab_counts(make_products, buffer):
    first, second = make_products({"hat": 2})
    shown = APIClient().get(f"/api/storefront/products/{first.pk}/images/", {"shopper": SHOPPER}).json()
    assert shown["shown"]["id"] is None and shown["token"]
    events = [
        {"kind": "click", "product": first.pk, "token": shown["token"]},
        {"kind": "add_to_cart", "product": first.pk, "token": shown["token"]},
        {"kind": "view", "product": second.pk, "at": (timezone.now() - datetime.timedelta(days=1)).isoformat()},
    ]
    reply = post_events(SHOPPER, events)
    assert reply.status_code == 202 and reply.json() == {"accepted": 3}
    assert buffer.llen(shoppers.BUFFER_KEY) == 4 and not ShopperEvent.objects.exists(), "nothing written yet"
    assert storefront_services.flush_events() == 4
    assert buffer.llen(shoppers.BUFFER_KEY) == 0 and event_buffer.pending_events(buffer) == 0
    assert sorted(ShopperEvent.objects.values_list("kind", "verified")) == [
        ("add_to_cart", True), ("click", True), ("impression", True), ("view", False),
    ], "the view carried no token"
    (stats,) = ArmStats.objects.filter(product=first)
    assert (stats.arm, stats.segment_index, stats.impressions, stats.clicks, stats.add_to_carts, stats.purchases) == (
        ArmStats.ORIGINAL, ArmStats.NO_SEGMENT, 1, 1, 1, 0,
    )
    assert storefront_services.flush_events() == 0, "each event is written once"


def test_a_flush_that_dies_before_committing_loses_no_event(make_products, buffer, monkeypatch):
    (product,) = make_products({"hat": 1})
    post_events(SHOPPER, [{"kind": "click", "product": product.pk}] * 3)

    def broken(_events):
        raise RuntimeError("database went away")

    monkeypatch.setattr(writing, "write_events", broken)
    with pytest.raises(RuntimeError):
        storefront_services.flush_events()
    assert event_buffer.pending_events(buffer) == 3, "still buffered"
    monkeypatch.undo()
    assert storefront_services.flush_events() == 3 and ShopperEvent.objects.count() == 3


def test_opt_out_forgets_the_events_and_keeps_none_from_then_on(make_products, buffer):
    (product,) = make_products({"hat": 1})
    post_events(SHOPPER, [{"kind": "click", "product": product.pk}])
    storefront_services.flush_events()
    post_events(SHOPPER, [{"kind": "purchase", "product": product.pk}])  # still in the buffer when opting out
    assert ShopperEvent.objects.count() == 1
    reply = APIClient().post("/api/storefront/opt-out/", {"shopper": SHOPPER}, format="json")
    assert reply.status_code == 204
    assert not ShopperEvent.objects.exists()
    assert post_events(SHOPPER, [{"kind": "view", "product": product.pk}]).json() == {"accepted": 0}
    storefront_services.flush_events()
    assert not ShopperEvent.objects.exists(), "the buffered event is dropped when written"
    body = APIClient().get(f"/api/storefront/products/{product.pk}/images/", {"shopper": SHOPPER}).json()
    assert body["segment"] is None and body["shown"]["arm"] == "original"
    storefront_services.flush_events()
    assert not ShopperEvent.objects.exists(), "no impression kept either"
    assert Shopper.objects.get().opted_out
    assert APIClient().post("/api/storefront/opt-out/", {"shopper": "a@b.c"}, format="json").status_code == 400


# ---- segments and variants --------------------------------------------------------------------------------

def shoppers_with_tastes(products, per_group=4, seed=0):
    """Two groups of shoppers: one clicks and buys the first half of ``products``, the other the second."""
    rng = random.Random(seed)
    half = len(products) // 2
    for group, chosen in enumerate((products[:half], products[half:])):
        for i in range(per_group):
            events = [{"kind": rng.choice(["click", "purchase", "view"]), "product": p.pk} for p in chosen]
            shopper = f"group{group}-shopper-{i:04d}"
            shoppers.write_events(shoppers.clean_events(shopper, with_tokens(shopper, events)))


def test_segments_are_deterministic_for_a_seed_and_keep_their_indexes(settings, make_products, unbuffered):
    settings.IMAGEGEN_SEGMENTS = 2
    products = make_products({"hat": 3, "dress": 3})
    shoppers_with_tastes(products)
    first = storefront_services.refresh_segments(seed=3)
    assert first == {"segments": 2, "shoppers": 8}
    assignment = dict(Shopper.objects.values_list("key", "segment__index"))
    centroids = dict(Segment.objects.values_list("index", "centroid"))
    storefront_services.refresh_segments(seed=3)
    assert dict(Shopper.objects.values_list("key", "segment__index")) == assignment
    assert dict(Segment.objects.values_list("index", "centroid")) == centroids
    # Each group's shoppers share a segment.
    for group in (0, 1):
        keys = [shoppers.shopper_key(f"group{group}-shopper-{i:04d}") for i in range(4)]
        assert len({assignment[k] for k in keys}) == 1
    # A new shopper with enough events joins the nearest segment; one with too few keeps the default.
    for newcomer, kind in (("newcomer-0001", "purchase"), ("newcomer-0002", "view")):
        events = with_tokens(newcomer, [{"kind": kind, "product": products[0].pk}])
        shoppers.write_events(shoppers.clean_events(newcomer, events))
    assert storefront_services.assign_new_shoppers() == 1
    newcomer = Shopper.objects.get(key=shoppers.shopper_key("newcomer-0001"))
    assert newcomer.segment.index == assignment[shoppers.shopper_key("group0-shopper-0000")]
    assert Shopper.objects.get(key=shoppers.shopper_key("newcomer-0002")).segment is None


def test_variants_are_made_per_segment_and_product_once_and_again_when_the_segment_moves(settings, make_products, unbuffered):
    settings.IMAGEGEN_SEGMENTS = 2
    products = make_products({"hat": 2, "dress": 2})
    shoppers_with_tastes(products, per_group=3)
    storefront_services.refresh_segments(seed=0)
    jobs = storefront_services.request_variants(send=False)
    assert len(jobs) == 2 * 4
    assert storefront_services.request_variants(send=False) == [], "queued ones are not queued again"
    for job in jobs:
        done = services.execute(job.pk)
        assert done.state == Job.State.SUCCEEDED, done.error
    variants = GeneratedImage.objects.filter(storefront_variant__isnull=False)
    assert variants.count() == 8 and {v.kind for v in variants} == {"background"}
    assert all(v.review_state == "pending" for v in variants), "reviewed like every generated image"
    segment = Segment.objects.get(index=0)
    assert {v.parameters["options"]["background"] for v in variants.filter(storefront_variant__segment=segment)} == {taste.backdrop_colour(segment)}
    assert storefront_services.request_variants(send=False) == [], "made ones are not made again"
    segment.centroid = [*segment.centroid[:3], 0.2, 0.5, -0.3]
    segment.save()
    assert len(storefront_services.request_variants(send=False)) == 4, "the segment's colour moved: its variants again"


def test_a_variant_whose_segment_went_meanwhile_fails_and_keeps_no_image(settings, make_products, unbuffered):
    """The core stores an edit job's image and the storefront links it to its segment in one transaction
    (imagegen.signals.edited_image_stored): a segment gone by then fails the job with nothing stored."""
    settings.IMAGEGEN_SEGMENTS = 1
    products = make_products({"hat": 2, "dress": 2})
    shoppers_with_tastes(products, per_group=2)
    storefront_services.refresh_segments(seed=0)
    segment = Segment.objects.get()
    job = services.request_edit(products[0], "background", options={"background": "#112233"}, segment=segment, send=False)
    linked = services.execute(
        services.request_edit(products[1], "background", options={"background": "#112233"}, segment=segment, send=False).pk
    )
    assert linked.images.get().storefront_variant.segment == segment
    segment.delete()
    done = services.execute(job.pk)
    assert done.state == Job.State.FAILED and "segment this variant was for no longer exists" in done.error
    assert not GeneratedImage.objects.filter(job=job).exists()
    assert not Variant.objects.exists() and GeneratedImage.objects.filter(job=linked).exists(), "unlinked, the image kept"


# ---- the storefront endpoint ------------------------------------------------------------------------------

@pytest.fixture
def personalized(settings, make_products, unbuffered):
    """One product with an approved and a pending variant for segment 0, and a shopper in that segment."""
    settings.IMAGEGEN_SEGMENTS = 1
    products = make_products({"hat": 2, "dress": 2})
    shoppers_with_tastes(products, per_group=2)
    storefront_services.refresh_segments(seed=0)
    product = products[0]
    segment = Segment.objects.get()
    for job in storefront_services.request_variants(product_model_queryset(product), send=False):
        services.execute(job.pk)
    approved = GeneratedImage.objects.get(product=product, storefront_variant__segment=segment)
    services.review(approved, "approved")
    pending = services.execute(
        services.request_edit(product, "background", options={"background": "#112233"}, segment=segment, send=False).pk
    ).images.get()
    member = "group0-shopper-0000"
    return product, segment, approved, pending, member


def product_model_queryset(product):
    return type(product).objects.filter(pk=product.pk)


def test_the_storefront_serves_approved_variants_of_the_segment_only(personalized, live_server):
    product, segment, approved, pending, member = personalized
    url = f"{live_server.url}/api/storefront/products/{product.pk}/images/"
    seen = set()
    for _ in range(30):
        reply = requests.get(url, params={"shopper": member}, timeout=10)
        assert reply.status_code == 200
        body = reply.json()
        assert body["segment"] == segment.index
        ids = [image["id"] for image in body["images"]]
        assert sorted(ids, key=lambda v: v or 0) == [None, approved.pk], "the original and the approved variant"
        assert pending.pk not in ids
        assert body["shown"] == body["images"][0] and body["personalized"] == (body["shown"]["id"] == approved.pk)
        seen.add(body["shown"]["id"])
    assert seen == {None, approved.pk}, "the bandit shows both arms"
    assert ShopperEvent.objects.filter(kind="impression").count() == 30
    counts = ArmStats.objects.filter(product=product, segment_index=segment.index)
    assert sum(counts.values_list("impressions", flat=True)) == 30


@pytest.mark.parametrize("who", ["unknown-shopper-01", None, "opted-out-shopper"])
def test_the_storefront_falls_back_to_the_original_photo(personalized, live_server, who):
    product, *_ = personalized
    if who == "opted-out-shopper":
        shoppers.opt_out(who)
    params = {"shopper": who} if who else {}
    body = requests.get(f"{live_server.url}/api/storefront/products/{product.pk}/images/", params=params, timeout=10).json()
    assert body["segment"] is None and body["personalized"] is False
    assert [image["arm"] for image in body["images"]] == ["original"]


@pytest.mark.parametrize("how", ["rejected", "deleted"])
def test_a_rejected_or_deleted_variant_is_no_longer_served(personalized, live_server, how):
    product, segment, approved, _pending, member = personalized
    url = f"{live_server.url}/api/storefront/products/{product.pk}/images/"
    assert len(requests.get(url, params={"shopper": member}, timeout=10).json()["images"]) == 2, "cached now"
    if how == "rejected":
        services.review(approved, "rejected")
    else:
        approved.delete()
    assert [i["arm"] for i in requests.get(url, params={"shopper": member}, timeout=10).json()["images"]] == ["original"]


def test_bad_requests_to_the_storefront(personalized, live_server):
    product, *_ = personalized
    before = ShopperEvent.objects.count()
    bad = requests.get(f"{live_server.url}/api/storefront/products/{product.pk}/images/", params={"shopper": "me@x.org"}, timeout=10)
    assert bad.status_code == 400 and "shopper" in bad.json()
    assert requests.get(f"{live_server.url}/api/storefront/products/999999/images/", timeout=10).status_code == 404
    assert ShopperEvent.objects.count() == before


def test_clicks_are_attributed_to_the_arm_that_was_shown(personalized):
    product, segment, approved, _pending, member = personalized
    body = serving.images_for(product.pk, member, rng=random.Random(1))
    shown = body["shown"]
    post_events(member, [{"kind": "click", "product": product.pk, "token": body["token"]}])
    arm = shown["id"] or ArmStats.ORIGINAL
    stats = ArmStats.objects.get(product=product, segment_index=segment.index, arm=arm)
    assert (stats.impressions, stats.clicks) == (1, 1)


# ---- the bandit -------------------------------------------------------------------------------------------

def test_the_bandit_is_reproducible_on_a_fixed_seed_and_favours_the_best_arm():
    arms = [bandit.Arm(0, 1000, 20), bandit.Arm(7, 1000, 60), bandit.Arm(9, 300, 3)]
    first = [bandit.choose(arms, random.Random(42), 0.1) for _ in range(5)]
    assert first == [bandit.choose(arms, random.Random(42), 0.1) for _ in range(5)]
    share = bandit.allocation(arms, random.Random(0), 0.1, 4000)
    assert share[7] > 0.8, share
    # The floor: every arm gets at least about exploration / arms of the impressions.
    assert min(share.values()) > 0.1 / 3 * 0.7, share
    uniform = bandit.allocation(arms, random.Random(0), 1.0, 3000)
    assert all(abs(v - 1 / 3) < 0.04 for v in uniform.values()), uniform
    with pytest.raises(ValueError):
        bandit.choose([], random.Random(0), 0.1)


def test_a_simulated_ab_run_moves_traffic_to_the_truly_best_arm():
    """Shoppers click with hidden rates; the counts the bandit sees are its own impressions' outcomes."""
    truth = {0: 0.02, 1: 0.06, 2: 0.03}
    rng, world = random.Random(5), random.Random(6)
    counts = {arm: [0, 0] for arm in truth}
    shown = []
    for _ in range(6000):
        arm = bandit.choose([bandit.Arm(a, *counts[a]) for a in truth], rng, 0.1)
        counts[arm][0] += 1
        counts[arm][1] += world.random() < truth[arm]
        shown.append(arm)
    late = shown[-2000:]
    assert late.count(1) / len(late) > 0.7, counts


def test_wilson_interval_matches_hand_values():
    from imagegen.storefront.services.ab_report import wilson

    low, high = wilson(18, 120)
    assert round(low, 4) == 0.0970 and round(high, 4) == 0.2247  # p=0.15, z=1.96: centre 0.1609, half 0.0638
    assert wilson(0, 10)[0] == 0.0 and 0.27 < wilson(0, 10)[1] < 0.28
    assert wilson(0, 0) == (0.0, 1.0)


def test_a_product_with_a_new_photo_gets_its_variants_again(settings, make_products, unbuffered, django_capture_on_commit_callbacks):
    from django.core.files.base import ContentFile

    settings.IMAGEGEN_SEGMENTS = 2
    products = make_products({"hat": 2, "dress": 2})
    shoppers_with_tastes(products, per_group=3)
    storefront_services.refresh_segments(seed=0)
    for job in storefront_services.request_variants(send=False):
        services.execute(job.pk)
    product = products[0]
    with django_capture_on_commit_callbacks(execute=True):
        product.name = "renamed"
        product.save(update_fields=["name"])
    assert not Job.objects.filter(state=Job.State.QUEUED).exists(), "a change that keeps the photo changes nothing"
    with django_capture_on_commit_callbacks(execute=True), open(products[2].image.path, "rb") as other:
        product.image.save("new-photo.jpg", ContentFile(other.read()), save=True)
    queued = Job.objects.filter(state=Job.State.QUEUED, product=product)
    assert queued.count() == 2 and {j.parameters["segment"] for j in queued} == set(Segment.objects.values_list("pk", flat=True))


def test_the_storefront_is_throttled_per_address(settings, make_products, unbuffered):
    (product,) = make_products({"hat": 1})
    settings.IMAGEGEN_STOREFRONT_THROTTLE_RATE = "5/minute"
    client = APIClient()
    codes = [client.get(f"/api/storefront/products/{product.pk}/images/").status_code for _ in range(7)]
    assert codes == [200] * 5 + [429] * 2
    refused = client.get(f"/api/storefront/products/{product.pk}/images/")
    assert 0 < int(refused["Retry-After"]) <= 60
    other = APIClient(REMOTE_ADDR="10.0.0.9")
    assert other.get(f"/api/storefront/products/{product.pk}/images/").status_code == 200, "per address"
    settings.IMAGEGEN_STOREFRONT_THROTTLE_RATE = None
    assert all(client.get(f"/api/storefront/products/{product.pk}/images/").status_code == 200 for _ in range(10))
