"""Shoppers and their storefront events: pseudonymous keys, opt-out, and cheap buffered writes.

The storefront sends its own opaque shopper id (a cookie's random value, say). Only a keyed hash of it is
stored, and ids that look like e-mail addresses are refused, so no name or address enters this path. A
shopper who opted out keeps a row saying so (or the opt-out could not be honoured) and nothing else.

Events are appended to a Redis list when ``IMAGEGEN_EVENT_BUFFER_URL`` is set and written in bulk by
``flush_events`` (a periodic task, ``services.event_buffer``), so a storefront request costs one round trip
to Redis; without a buffer each request's events are written in one bulk insert (``services.writing``).

Events are open to anybody, so only *verified* ones (carrying the impression token the images endpoint
handed out, ``services.impressions``) count for the A/B results and the segments; the others are kept,
marked unverified. Events are kept ``IMAGEGEN_EVENT_RETENTION_DAYS`` (``purge_events``).
"""
import datetime
import hashlib
import hmac
import json
import re
from functools import partial

from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ...conf import settings
from ...models import GeneratedImage
from ...services.products import product_model
from ..models import ArmStats, Shopper, ShopperEvent
from . import impressions
from .event_buffer import BUFFER_KEY, event_buffer, flush_events  # noqa: F401  (the buffer's API, here as before)
from .writing import Written, write_events  # noqa: F401  (here as before)

# Opaque ids only: a UUID, a cookie value. No "@" (e-mail addresses), no spaces (names).
SHOPPER_ID = re.compile(r"[A-Za-z0-9_\-.:]{8,128}")
PURGE_CHUNK = 5000
EVENT_KINDS = {kind.value for kind in ShopperEvent.Kind}
NO_SEGMENT = ArmStats.NO_SEGMENT
OPTED_OUT = "opted-out"


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
        shopper, _created = Shopper.objects.select_for_update().get_or_create(key=key)
        shopper.opted_out, shopper.segment = True, None
        shopper.save(update_fields=["opted_out", "segment"])
        ShopperEvent.objects.filter(shopper=shopper).delete()
    forget_shopper(key)


def segment_of(key: str) -> int | str:
    """The segment index of shopper ``key`` (``NO_SEGMENT`` for none or an unknown shopper, ``OPTED_OUT``),
    kept in the cache for ``IMAGEGEN_STOREFRONT_CACHE_SECONDS``."""
    cache_key = f"imagegen:shopper:{key}"
    cached = cache.get(cache_key)
    if cached is None:
        row = Shopper.objects.filter(key=key).values_list("opted_out", "segment__index").first()
        if row is None:
            cached = NO_SEGMENT
        else:
            cached = OPTED_OUT if row[0] else (NO_SEGMENT if row[1] is None else row[1])
        cache.set(cache_key, cached, settings.STOREFRONT_CACHE_SECONDS)
    return cached


def forget_shopper(key: str) -> None:
    cache.delete(f"imagegen:shopper:{key}")


def opt_in(shopper_id: str) -> None:
    Shopper.objects.filter(key=shopper_key(shopper_id)).update(opted_out=False)


def is_opted_out(key: str) -> bool:
    return Shopper.objects.filter(key=key, opted_out=True).exists()


def clean_events(shopper_id: object, events: object) -> list[dict]:
    """The events of one request, checked: all or none (``ValidationError`` naming the first bad one).

    An event is verified when its ``token`` is a valid impression token of this shopper and product, its
    ``image`` (if given) is the one the token says was shown, it is not an impression (the server counted
    that when it issued the token) and the token was not used for that kind before. A verified event
    without ``image`` gets the image the token names (None: the original photo); an unverified one keeps
    what it says, None meaning not known. ``image`` must be an approved image of the product; an unknown
    product or an unknown, unapproved or other product's image gets one error that tells nothing more."""
    key = shopper_key(shopper_id)
    if not isinstance(events, list) or not 1 <= len(events) <= settings.EVENTS_PER_REQUEST:
        raise ValidationError({"events": _("Send a list of 1 to %(most)d events.") % {"most": settings.EVENTS_PER_REQUEST}})
    now = timezone.now()
    cleaned = []
    for position, event in enumerate(events):
        bad = partial(_bad, position)
        if not isinstance(event, dict) or set(event) - {"kind", "product", "image", "at", "token"}:
            raise bad(_("an object with kind, product and optionally image, token and at."))
        kind, product, image = event.get("kind"), event.get("product"), event.get("image")
        if kind not in EVENT_KINDS:
            raise bad(_("kind must be one of %(kinds)s."), kinds=", ".join(sorted(EVENT_KINDS)))
        for name, value in (("product", product), ("image", image)):
            if value is None and name == "image":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 2**63 - 1:
                raise bad(_("%(name)s must be a positive id."), name=name)
        token = event.get("token")
        if token is not None and not isinstance(token, str):
            raise bad(_("token must be the string the images endpoint handed out."))
        cleaned.append({"key": key, "kind": kind, "product": product, "image": image,
                        "at": _event_time(event.get("at"), now, bad).isoformat(), "token": token})
    _check_ids(cleaned)
    for e in cleaned:
        token = e.pop("token")
        valid, shown = impressions.shown(token, key, e["product"]) if token else (False, None)
        e["verified"] = (
            valid and e["kind"] != "impression" and e["image"] in (None, shown) and impressions.first_use(token, e["kind"])
        )
        if e["verified"]:
            e["image"] = shown
    return cleaned


def _bad(position: int, message: str, **values) -> ValidationError:
    return ValidationError({"events": _("Event %(position)d: %(problem)s") % {"position": position, "problem": message % values}})


def _event_time(value: object, now: datetime.datetime, bad) -> datetime.datetime:
    if value is None:
        return now
    try:
        at = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        raise bad(_("at must be an ISO 8601 time.")) from None
    if at.tzinfo is None:
        raise bad(_("at needs a time zone."))
    # Clocks drift; events from the future or of last year are not the storefront's.
    if not now - datetime.timedelta(days=7) <= at <= now + datetime.timedelta(minutes=5):
        raise bad(_("at must be within the last 7 days."))
    return at


def _check_ids(cleaned: list[dict]) -> None:
    """Products must exist, and images be approved images of their event's product: else one uniform
    error, so the endpoint cannot be used to find out which ids exist or are pending review."""
    products = {e["product"] for e in cleaned}
    images = {e["image"] for e in cleaned if e["image"] is not None}
    known = set(product_model().objects.filter(pk__in=products).values_list("pk", flat=True))
    pairs = set(GeneratedImage.objects.filter(
        pk__in=images, review_state=GeneratedImage.ReviewState.APPROVED
    ).values_list("pk", "product_id"))
    if products - known or any(e["image"] is not None and (e["image"], e["product"]) not in pairs for e in cleaned):
        raise ValidationError({"events": _("Unknown product or image.")})


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
    """Keep that ``image`` (None: the original photo) was shown; the storefront checked the ids itself, so
    the impression is verified."""
    event = {"key": key, "kind": "impression", "product": product, "image": image, "at": at.isoformat(), "verified": True}
    buffer = event_buffer()
    if buffer is None:
        write_events([event])
    else:
        buffer.rpush(BUFFER_KEY, json.dumps(event))


def purge_events() -> int:
    """Delete the events older than ``IMAGEGEN_EVENT_RETENTION_DAYS`` in chunks (short transactions, so
    the storefront's writes are never held up for long); how many. The A/B counts stay."""
    days = settings.EVENT_RETENTION_DAYS
    if days is None:
        return 0
    cutoff = timezone.now() - datetime.timedelta(days=days)
    deleted = 0
    while True:
        chunk = list(ShopperEvent.objects.filter(at__lt=cutoff).order_by().values_list("pk", flat=True)[:PURGE_CHUNK])
        if not chunk:
            return deleted
        deleted += ShopperEvent.objects.filter(pk__in=chunk).delete()[0]
