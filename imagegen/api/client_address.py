"""The address a request came from, for per-address limits.

DRF's own ``get_ident`` trusts the client's ``X-Forwarded-For`` whenever ``NUM_PROXIES`` is unset, so a
client that sends a new header with every request gets a new allowance with every request. Here the
header is read only when the host has said how many proxies in front of it append to it
(``REST_FRAMEWORK["NUM_PROXIES"]``); otherwise the socket's address counts.
"""
from rest_framework.settings import api_settings


def client_address(request) -> str:
    """The client's address: the socket's, or the entry the ``NUM_PROXIES`` trusted proxies wrote."""
    meta = request.META
    remote_addr = meta.get("REMOTE_ADDR") or ""
    proxies = api_settings.NUM_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not proxies or not forwarded:
        return remote_addr
    # Each proxy appends the address it saw; the n-th entry from the right was written by the outermost
    # trusted proxy, whatever the client put in front of it.
    entries = [entry.strip() for entry in forwarded.split(",")]
    return entries[-min(proxies, len(entries))] or remote_addr
