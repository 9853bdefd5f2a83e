"""Rate limits of the API, per user and per client IP, with rates from imagegen's settings.

Both apply to every view: a per-user limit alone lets one address cycle through many accounts (or none,
anonymously), and a per-IP limit alone lets one account spread its requests over many addresses.
Counters live in Django's default cache, so processes share them only when that cache is shared (Redis):
with the per-process local-memory cache each web process counts on its own.
"""
from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from ..conf import DEFAULTS, settings
from . import window_counter
from .client_address import client_address


class _ByTrustedAddress:
    """Counts per address by ``client_address``: a forwarded header only counts behind trusted proxies."""

    def get_ident(self, request) -> str:
        return client_address(request)


class _SettingsRateThrottle(_ByTrustedAddress, SimpleRateThrottle):
    """Reads its rate from ``IMAGEGEN_THROTTLE_RATES[scope]``; None there switches the limit off."""

    def get_rate(self):
        # A host that sets only some scopes keeps the defaults of the others.
        rates = {**DEFAULTS["THROTTLE_RATES"], **settings.THROTTLE_RATES}
        return rates.get(self.scope)


class PerUserThrottle(_SettingsRateThrottle):
    """Requests of one signed-in user (anonymous requests are left to PerIPThrottle)."""

    scope = "user"

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class PerIPThrottle(_SettingsRateThrottle):
    """Requests from one client address, signed in or not (behind proxies, set DRF's NUM_PROXIES to their count)."""

    scope = "ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class JobRequestThrottle(_SettingsRateThrottle):
    """Requests that start work (a job, an upload, a review) by one user, or one address when anonymous."""

    scope = "jobs"

    def get_cache_key(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class StorefrontThrottle(_ByTrustedAddress, BaseThrottle):
    """The public storefront endpoints, per client address, at ``IMAGEGEN_STOREFRONT_THROTTLE_RATE``.

    A counter per fixed window (one atomic increment), not DRF's list of every request's time: that list
    is read and written whole on every request, and at a storefront's rates it holds thousands of entries.
    A burst of up to twice the rate across a window boundary is the price."""

    def __init__(self) -> None:
        self.wait_seconds: float | None = None

    def allow_request(self, request, view) -> bool:
        rate = settings.STOREFRONT_THROTTLE_RATE
        if rate is None:
            return True
        limit, period = SimpleRateThrottle.parse_rate(None, rate)  # a pure function that DRF keeps as a method
        count, left = window_counter.hit(f"imagegen:throttle:storefront:{self.get_ident(request)}", period)
        if count <= limit:
            return True
        self.wait_seconds = left
        return False

    def wait(self) -> float | None:
        return self.wait_seconds


DEFAULT_THROTTLES = [PerUserThrottle, PerIPThrottle]
WRITE_THROTTLES = [*DEFAULT_THROTTLES, JobRequestThrottle]
