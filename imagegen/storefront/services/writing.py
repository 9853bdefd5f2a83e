"""Writing storefront events to the database, and adding the verified ones to the A/B counts (``ArmStats``):
what a request does at once without an event buffer, and what a flush does with the buffered ones
(``services.event_buffer``)."""
import datetime
import logging
from collections import Counter
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import F, Model

from ...models import GeneratedImage
from ...services.products import product_model
from ..models import ArmStats, Segment, Shopper, ShopperEvent

logger = logging.getLogger(__name__)

# Counters of ArmStats each event kind adds to.
_COUNTERS = {"impression": "impressions", "click": "clicks", "add_to_cart": "add_to_carts", "purchase": "purchases"}


class Written(NamedTuple):
    stored: int
    dropped: int  # their product or image was deleted after they were accepted


def write_events(events: list[dict]) -> Written:
    """Store events and add the verified ones to the A/B counts, in one transaction.

    Events of shoppers who opted out since they were sent are dropped silently; events whose product or
    image was deleted since they were accepted are dropped and counted (``Written.dropped``), so one such
    event cannot fail the whole batch at commit. The rows they refer to are read with a key-share lock (on
    PostgreSQL), so they cannot be deleted before this transaction commits."""
    keys = {e["key"] for e in events}
    with transaction.atomic():
        products = _existing(product_model(), {e["product"] for e in events})
        images = _existing(GeneratedImage, {e["image"] for e in events if e.get("image")})
        Shopper.objects.bulk_create([Shopper(key=k) for k in keys], ignore_conflicts=True)
        shoppers = {s.key: s for s in Shopper.objects.filter(key__in=keys)}
        segments = _existing(Segment, {s.segment_id for s in shoppers.values() if s.segment_id})
        rows, dropped = [], 0
        for e in events:
            shopper = shoppers[e["key"]]
            if shopper.opted_out:
                continue
            if e["product"] not in products or (e.get("image") and e["image"] not in images):
                dropped += 1
                continue
            rows.append(ShopperEvent(
                shopper=shopper, product_id=e["product"], image_id=e.get("image"), kind=e["kind"],
                segment_id=shopper.segment_id if shopper.segment_id in segments else None,
                at=datetime.datetime.fromisoformat(e["at"]), verified=bool(e.get("verified")),
            ))
        ShopperEvent.objects.bulk_create(rows)
        _count([r for r in rows if r.verified])
    if dropped:
        logger.warning("%d storefront events dropped: their product or image was deleted", dropped)
    return Written(len(rows), dropped)


def _existing(model: type[Model], ids: set[int]) -> set[int]:
    """Which of ``ids`` are rows of ``model``, locked against deletion until the transaction ends (the lock
    a foreign key check takes, so writers and other flushers are not held up)."""
    if not ids:
        return set()
    if connection.vendor != "postgresql":
        return set(model.objects.filter(pk__in=ids).values_list("pk", flat=True))
    meta = model._meta
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {connection.ops.quote_name(meta.pk.column)} FROM {connection.ops.quote_name(meta.db_table)} "
            f"WHERE {connection.ops.quote_name(meta.pk.column)} = ANY(%s) ORDER BY 1 FOR KEY SHARE",
            [sorted(ids)],
        )
        return {row[0] for row in cursor.fetchall()}


def _count(rows: list[ShopperEvent]) -> None:
    segments = _segment_indexes({r.segment_id for r in rows if r.segment_id})
    counts: Counter = Counter()
    for row in rows:
        counter = _COUNTERS.get(row.kind)
        if counter:
            segment = segments.get(row.segment_id, ArmStats.NO_SEGMENT)
            counts[(row.product_id, segment, row.image_id or ArmStats.ORIGINAL, row.at.date(), counter)] += 1
    grouped: dict[tuple, dict[str, int]] = {}
    for (product, segment, arm, day, counter), n in counts.items():
        grouped.setdefault((product, segment, arm, day), {})[counter] = n
    for (product, segment, arm, day), adds in sorted(grouped.items(), key=lambda item: item[0][:3] + (str(item[0][3]),)):
        stats, _created = ArmStats.objects.get_or_create(product_id=product, segment_index=segment, arm=arm, day=day)
        ArmStats.objects.filter(pk=stats.pk).update(**{name: F(name) + n for name, n in adds.items()})


def _segment_indexes(ids: set[int]) -> dict[int, int]:
    return dict(Segment.objects.filter(pk__in=ids).values_list("pk", "index"))
