"""Shoppers and their storefront events: pseudonymous keys, opt-out, and cheap buffered writes.

The storefront sends its own opaque shopper id (a cookie's random value, say). Only a keyed hash of it is
stored, and ids that look like e-mail addresses are refused, so no name or address enters this path. A
shopper who opted out keeps a row saying so (or the opt-out could not be honoured) and nothing else.

Events are appended to a Redis list when ``IMAGEGEN_EVENT_BUFFER_URL`` is set and written in bulk by
``flush_events`` (a periodic task), so a storefront request costs one round trip to Redis; without a
buffer each request's events are written in one bulk insert.
"""
import datetime
import hashlib
import hmac
import json
import logging
import re
from collections import Counter
from functools import cache

from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..conf import settings
from ..models import ArmStats, GeneratedImage, Shopper, ShopperEvent
from .products import product_model

logger = logging.getLogger(__name__)

# Opaque ids only: a UUID, a cookie value. No "@" (e-mail addresses), no spaces (names).
SHOPPER_ID = re.compile(r"[A-Za-z0-9_\-.:]{8,128}")
BUFFER_KEY = "imagegen:events"
FLUSH_LOCK_KEY = "imagegen:events:flush-lock"
FLUSH_LOCK_SECONDS = 60
EVENT_KINDS = {kind.value for kind in ShopperEvent.Kind}
# Counters of ArmStats each event kind adds to.
_COUNTERS = {"impression": "impressions", "click": "clicks", "add_to_cart": "add_to_carts", "purchase": "purchases"}


def shopper_key(shopper_id: object) -> str:
    """The stored key of a storefront shopper id, or ``ValidationError({"shopper": reason})``."""
    if not isinstance(shopper_id, str) or not SHOPPER_ID.fullmatch(shopper_id):
        raise ValidationError(
            {"shopper": "A shopper id is 8 to 128 letters, digits, '-', '_', '.' or ':' (an opaque id such as a "
             "UUID; never a name or an e-mail address)."}
        )
    secret = settings.SHOPPER_HASH_KEY or f"imagegen-shopper:{django_settings.SECRET_KEY}"
    return hmac.new(secret.encode(), shopper_id.encode(), hashlib.sha256).hexdigest()


def opt_out(shopper_id: str) -> None:
    """Forget the shopper's events and keep none from now on; they get the default images."""
    key = shopper_key(shopper_id)
    with transaction.atomic():
        shopper, _ = Shopper.objects.select_for_update().get_or_create(key=key)
        shopper.opted_out, shopper.segment = True, None
        shopper.save(update_fields=["opted_out", "segment"])
        ShopperEvent.objects.filter(shopper=shopper).delete()
    from .storefront import forget_shopper

    forget_shopper(key)


def opt_in(shopper_id: str) -> None:
    Shopper.objects.filter(key=shopper_key(shopper_id)).update(opted_out=False)


def is_opted_out(key: str) -> bool:
    return Shopper.objects.filter(key=key, opted_out=True).exists()


def clean_events(shopper_id: object, events: object) -> list[dict]:
    """The events of one request, checked: all or none (``ValidationError`` naming the first bad one)."""
    key = shopper_key(shopper_id)
    if not isinstance(events, list) or not 1 <= len(events) <= settings.EVENTS_PER_REQUEST:
        raise ValidationError({"events": f"Send a list of 1 to {settings.EVENTS_PER_REQUEST} events."})
    now = timezone.now()
    cleaned = []
    for position, event in enumerate(events):
        where = f"Event {position}"
        if not isinstance(event, dict) or set(event) - {"kind", "product", "image", "at"}:
            raise ValidationError({"events": f"{where}: an object with kind, product and optionally image and at."})
        kind, product, image = event.get("kind"), event.get("product"), event.get("image")
        if kind not in EVENT_KINDS:
            raise ValidationError({"events": f"{where}: kind must be one of {', '.join(sorted(EVENT_KINDS))}."})
        for name, value in (("product", product), ("image", image)):
            if value is None and name == "image":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
                raise ValidationError({"events": f"{where}: {name} must be a positive id."})
        at = now
        if event.get("at") is not None:
            try:
                at = datetime.datetime.fromisoformat(str(event["at"]))
            except ValueError:
                raise ValidationError({"events": f"{where}: at must be an ISO 8601 time."}) from None
            if at.tzinfo is None:
                raise ValidationError({"events": f"{where}: at needs a time zone."})
            # Clocks drift; events from the future or of last year are not the storefront's.
            if not now - datetime.timedelta(days=7) <= at <= now + datetime.timedelta(minutes=5):
                raise ValidationError({"events": f"{where}: at must be within the last 7 days."})
        cleaned.append({"key": key, "kind": kind, "product": product, "image": image, "at": at.isoformat()})
    products = {e["product"] for e in cleaned}
    known = set(product_model().objects.filter(pk__in=products).values_list("pk", flat=True))
    if products - known:
        raise ValidationError({"events": f"Unknown product(s): {', '.join(map(str, sorted(products - known)))}."})
    images = {e["image"] for e in cleaned if e["image"] is not None}
    pairs = set(GeneratedImage.objects.filter(pk__in=images).values_list("pk", "product_id"))
    for e in cleaned:
        if e["image"] is not None and (e["image"], e["product"]) not in pairs:
            raise ValidationError({"events": f"Image {e['image']} is not a variant of product {e['product']}."})
    return cleaned


def record_events(shopper_id: object, events: object) -> int:
    """Check and keep one request's events (none for an opted-out shopper); how many were kept."""
    cleaned = clean_events(shopper_id, events)
    # Checked again when the buffer is written: an opt-out in between drops these too.
    if is_opted_out(cleaned[0]["key"]):
        return 0
    buffer = event_buffer()
    if buffer is None:
        write_events(cleaned)
    else:
        buffer.rpush(BUFFER_KEY, *(json.dumps(e) for e in cleaned))
    return len(cleaned)


def record_impression(key: str, product: int, image: int | None, at: datetime.datetime) -> None:
    """Keep that ``image`` (None: the original photo) was shown; the storefront checked the ids itself."""
    event = {"key": key, "kind": "impression", "product": product, "image": image, "at": at.isoformat()}
    buffer = event_buffer()
    if buffer is None:
        write_events([event])
    else:
        buffer.rpush(BUFFER_KEY, json.dumps(event))


@cache
def _buffer_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def event_buffer():
    """The Redis client of the event buffer, None when events are written at once."""
    url = settings.EVENT_BUFFER_URL
    return _buffer_client(url) if url else None


def flush_events() -> int:
    """Write the buffered events in batches of ``IMAGEGEN_EVENT_FLUSH_BATCH``; how many were written.

    An event leaves the buffer only after its batch is committed, and one flush runs at a time (a Redis
    lock), so a crash mid-way writes a batch again at worst, never loses one."""
    buffer = event_buffer()
    if buffer is None:
        return 0
    lock = buffer.lock(FLUSH_LOCK_KEY, timeout=FLUSH_LOCK_SECONDS, blocking=False)
    if not lock.acquire():
        return 0
    written = 0
    try:
        while True:
            raw = buffer.lrange(BUFFER_KEY, 0, settings.EVENT_FLUSH_BATCH - 1)
            if not raw:
                return written
            write_events([json.loads(item) for item in raw])
            buffer.ltrim(BUFFER_KEY, len(raw), -1)
            written += len(raw)
            lock.extend(FLUSH_LOCK_SECONDS, replace_ttl=True)
    finally:
        lock.release()


def write_events(events: list[dict]) -> None:
    """Store events and add them to the A/B counts, in one transaction. Events of shoppers who opted out
    since they were sent are dropped; an event without ``image`` goes to the arm last shown to that
    shopper for that product (else the original photo)."""
    keys = {e["key"] for e in events}
    with transaction.atomic():
        existing = {s.key: s for s in Shopper.objects.filter(key__in=keys)}
        Shopper.objects.bulk_create(
            [Shopper(key=k) for k in keys - set(existing)], ignore_conflicts=True
        )
        shoppers = {s.key: s for s in Shopper.objects.filter(key__in=keys)}
        rows = []
        shown = _last_impressions(events, shoppers)
        for e in events:
            shopper = shoppers[e["key"]]
            if shopper.opted_out:
                continue
            image = e["image"]
            if e["kind"] == "impression":
                shown[(shopper.pk, e["product"])] = image
            elif image is None and e["kind"] in ("click", "add_to_cart", "purchase"):
                image = shown.get((shopper.pk, e["product"]))
            rows.append(ShopperEvent(
                shopper=shopper, product_id=e["product"], image_id=image, segment_id=shopper.segment_id,
                kind=e["kind"], at=datetime.datetime.fromisoformat(e["at"]),
            ))
        # A variant deleted since it was shown is counted on its arm but not linked.
        live = set(GeneratedImage.objects.filter(pk__in={r.image_id for r in rows if r.image_id}).values_list("pk", flat=True))
        arms = [r.image_id or ArmStats.ORIGINAL for r in rows]
        for row in rows:
            if row.image_id not in live:
                row.image_id = None
        ShopperEvent.objects.bulk_create(rows)
        _count(rows, arms)


def _last_impressions(events: list[dict], shoppers: dict[str, Shopper]) -> dict[tuple[int, int], int | None]:
    """{(shopper id, product id): image last shown} for the pairs of ``events`` that need attributing, in
    one query (events are at most 7 days old, so are the impressions they can be attributed to)."""
    wanted = {
        (shoppers[e["key"]].pk, e["product"]) for e in events
        if e["image"] is None and e["kind"] in ("click", "add_to_cart", "purchase")
    }
    if not wanted:
        return {}
    since = timezone.now() - datetime.timedelta(days=8)
    shown: dict[tuple[int, int], int | None] = {}
    rows = (
        ShopperEvent.objects.filter(
            kind="impression", at__gte=since, shopper_id__in={s for s, _ in wanted}, product_id__in={p for _, p in wanted}
        )
        .order_by("at", "id").values_list("shopper_id", "product_id", "image_id")
    )
    for shopper_id, product_id, image_id in rows.iterator():
        if (shopper_id, product_id) in wanted:
            shown[(shopper_id, product_id)] = image_id
    return shown


def _count(rows: list[ShopperEvent], arms: list[int]) -> None:
    segments = _segment_indexes({r.segment_id for r in rows if r.segment_id})
    counts: Counter = Counter()
    for row, arm in zip(rows, arms, strict=True):
        counter = _COUNTERS.get(row.kind)
        if counter:
            segment = segments.get(row.segment_id, ArmStats.NO_SEGMENT)
            counts[(row.product_id, segment, arm, row.at.date(), counter)] += 1
    grouped: dict[tuple, dict[str, int]] = {}
    for (product, segment, arm, day, counter), n in counts.items():
        grouped.setdefault((product, segment, arm, day), {})[counter] = n
    for (product, segment, arm, day), adds in sorted(grouped.items(), key=lambda item: item[0][:3] + (str(item[0][3]),)):
        stats, _ = ArmStats.objects.get_or_create(product_id=product, segment_index=segment, arm=arm, day=day)
        ArmStats.objects.filter(pk=stats.pk).update(**{name: F(name) + n for name, n in adds.items()})


def _segment_indexes(ids: set[int]) -> dict[int, int]:
    from ..models import Segment

    return dict(Segment.objects.filter(pk__in=ids).values_list("pk", "index"))
