"""The Redis buffer of storefront events and the flush that writes it to the database.

A request appends its events to the list ``BUFFER_KEY`` (one round trip). A flush takes them a batch at a
time: one Lua script moves the head of the list to the flusher's own processing list and registers that
list (``PROCESSING_SET_KEY``), so concurrent flushers always take disjoint batches. The batch is written in
one database transaction, and only after the commit is the processing list deleted.

Guarantee: concurrent or slow flushers neither lose nor double-count an event. A flusher proves it is
alive by a PostgreSQL session advisory lock on its id, held from before it takes a batch until after it
deleted it; PostgreSQL drops the lock with the session, so a flusher killed mid-way (process, connection or
machine) leaves its lock free and its transaction rolled back. Each flush first adopts the processing
lists whose owner's lock it can take (dead owners only) and writes them. A batch is written twice only
when its flusher dies in the instant between the database commit and the Redis delete. On other databases
liveness is a Redis key the flusher renews every batch (``FLUSHER_TTL_SECONDS``): a flusher stalled past it
may see its batch written by another one too.
"""
import json
import logging
import secrets
from functools import cache

from django.db import Error as DatabaseError, connection

from ...conf import settings
from . import writing

logger = logging.getLogger(__name__)

BUFFER_KEY = "imagegen:events"
PROCESSING_SET_KEY = "imagegen:events:processing"
PROCESSING_PREFIX = "imagegen:events:processing:"
ALIVE_PREFIX = "imagegen:events:flusher:"
FLUSHER_TTL_SECONDS = 300
# First half of the advisory lock's two-int key, so imagegen's locks do not meet another app's ("img").
ADVISORY_CLASS = 0x696D67

# Move up to ARGV[1] events from the head of KEYS[1] to KEYS[2] and register KEYS[2] in KEYS[3], atomically.
_CLAIM = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
for i = 1, #items, 1000 do
  redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 999, #items)))
end
redis.call('SADD', KEYS[3], KEYS[2])
return items
"""


@cache
def _buffer_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def event_buffer():
    """The Redis client of the event buffer, None when events are written at once."""
    url = settings.EVENT_BUFFER_URL
    return _buffer_client(url) if url else None


def pending_events(buffer) -> int:
    """Events not yet written: in the buffer and in the flushers' processing lists."""
    lists = [key for key in buffer.smembers(PROCESSING_SET_KEY)]
    return buffer.llen(BUFFER_KEY) + sum(buffer.llen(key) for key in lists)


def _hold(buffer, flusher_id: int) -> bool:
    """Take flusher ``flusher_id``'s liveness claim; False while that flusher is alive."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [ADVISORY_CLASS, flusher_id])
            return bool(cursor.fetchone()[0])
    return bool(buffer.set(f"{ALIVE_PREFIX}{flusher_id}", 1, nx=True, ex=FLUSHER_TTL_SECONDS))


def _renew(buffer, flusher_id: int) -> None:
    if connection.vendor != "postgresql":
        buffer.expire(f"{ALIVE_PREFIX}{flusher_id}", FLUSHER_TTL_SECONDS)


def _let_go(buffer, flusher_id: int) -> None:
    if connection.vendor == "postgresql":
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [ADVISORY_CLASS, flusher_id])
        except DatabaseError:
            pass  # the session is gone, and its locks with it
    else:
        buffer.delete(f"{ALIVE_PREFIX}{flusher_id}")


def _done(buffer, list_key) -> None:
    with buffer.pipeline(transaction=True) as pipe:
        pipe.delete(list_key)
        pipe.srem(PROCESSING_SET_KEY, list_key)
        pipe.execute()


def _write(raw: list[bytes]) -> None:
    writing.write_events([json.loads(item) for item in raw])


def _recover(buffer) -> int:
    """Write the processing lists of dead flushers; how many events they held."""
    written = 0
    for list_key in buffer.smembers(PROCESSING_SET_KEY):
        try:
            flusher_id = int(list_key.rsplit(b":", 1)[1])
        except (IndexError, ValueError):
            buffer.srem(PROCESSING_SET_KEY, list_key)
            continue
        if not _hold(buffer, flusher_id):
            continue
        try:
            raw = buffer.lrange(list_key, 0, -1)
            if raw:
                logger.info("storefront events: writing %d left by a dead flusher", len(raw))
                _write(raw)
            _done(buffer, list_key)
            written += len(raw)
        finally:
            _let_go(buffer, flusher_id)
    return written


def _new_flusher(buffer) -> int:
    while True:
        flusher_id = secrets.randbits(31)
        if _hold(buffer, flusher_id):
            # A dead flusher's list under the same id would be deleted with our first batch: take another.
            if not buffer.exists(f"{PROCESSING_PREFIX}{flusher_id}"):
                return flusher_id
            _let_go(buffer, flusher_id)


def flush_events() -> int:
    """Write the buffered events in batches of ``IMAGEGEN_EVENT_FLUSH_BATCH`` (see the module's guarantee);
    how many were taken from the buffer and written (or dropped as written by ``write_events``)."""
    buffer = event_buffer()
    if buffer is None:
        return 0
    written = _recover(buffer)
    flusher_id = _new_flusher(buffer)
    list_key = f"{PROCESSING_PREFIX}{flusher_id}"
    claim = buffer.register_script(_CLAIM)
    try:
        while True:
            raw = claim(keys=[BUFFER_KEY, list_key, PROCESSING_SET_KEY], args=[settings.EVENT_FLUSH_BATCH])
            if not raw:
                return written
            _write(raw)
            _done(buffer, list_key)
            written += len(raw)
            _renew(buffer, flusher_id)
    finally:
        _let_go(buffer, flusher_id)
