"""Counters per fixed time window in Django's default cache: one atomic increment a hit.

DRF's own throttles keep a list of every request's time and write it whole on each request; a counter is
enough where a burst of up to twice the limit across a window boundary is acceptable.
"""
import time

from django.core.cache import cache


def _window(period: int) -> tuple[int, float]:
    now = time.time()
    window = int(now // period)
    return window, (window + 1) * period - now


def hit(key: str, period: int) -> tuple[int, float]:
    """Count one more in the current window of ``period`` seconds: (count now, seconds left in the window)."""
    window, left = _window(period)
    full_key = f"{key}:{window}"
    cache.add(full_key, 0, timeout=period + 1)
    try:
        return cache.incr(full_key), left
    except ValueError:  # expired between add and incr
        cache.add(full_key, 1, timeout=period + 1)
        return 1, left


def peek(key: str, period: int) -> tuple[int, float]:
    """The count of the current window without adding to it, and the seconds left in the window."""
    window, left = _window(period)
    return int(cache.get(f"{key}:{window}", 0)), left
