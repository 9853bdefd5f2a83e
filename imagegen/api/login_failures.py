"""Failed password checks, counted per client address and per username, refused (429) once either count
reaches its limit, before the password is hashed.

DRF authenticates before it throttles and never counts a failed login, so without this every guess costs
the server a full password hash and the guesser nothing. Counting per address stops one machine trying
many accounts; per username stops many machines trying one account. Rates come from
``IMAGEGEN_LOGIN_FAILURE_RATES``; counters live in the default cache (shared when it is Redis).
"""
import hashlib

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.throttling import SimpleRateThrottle

from ..conf import DEFAULTS, settings
from . import window_counter
from .client_address import client_address


class TooManyFailedLogins(exceptions.Throttled):
    default_detail = _("Too many failed sign-in attempts; try again later.")
    extra_detail_singular = _("Try again in {wait} second.")
    extra_detail_plural = _("Try again in {wait} seconds.")


def _keys(request, username: str) -> list[tuple[str, str]]:
    # Hashed: a username is arbitrary text, and cache backends restrict key characters and length.
    user_digest = hashlib.sha256(username.casefold().encode("utf-8", "surrogatepass")).hexdigest()
    return [
        ("address", f"imagegen:login-failures:address:{client_address(request)}"),
        ("username", f"imagegen:login-failures:username:{user_digest}"),
    ]


def _limits() -> dict[str, tuple[int, int] | None]:
    rates = {**DEFAULTS["LOGIN_FAILURE_RATES"], **(settings.LOGIN_FAILURE_RATES or {})}
    return {scope: SimpleRateThrottle.parse_rate(None, rate) if rate else None for scope, rate in rates.items()}


def refuse_if_blocked(request, username: str) -> None:
    """Raise ``TooManyFailedLogins`` (429) when the address or the username has used up its failures."""
    limits = _limits()
    for scope, key in _keys(request, username):
        if limits.get(scope) is None:
            continue
        limit, period = limits[scope]
        count, left = window_counter.peek(key, period)
        if count >= limit:
            raise TooManyFailedLogins(wait=left)


def record_failure(request, username: str) -> None:
    limits = _limits()
    for scope, key in _keys(request, username):
        if limits.get(scope) is not None:
            window_counter.hit(key, limits[scope][1])
