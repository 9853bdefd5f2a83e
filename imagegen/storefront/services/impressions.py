"""Impression tokens: what the storefront showed a shopper, signed.

The images endpoint hands one out with the image it chose; an event that carries it back is *verified*:
the shopper was shown that image of that product by this server within ``IMAGEGEN_IMPRESSION_TOKEN_SECONDS``.
Only verified events move the bandit and the segments, so clicks cannot be posted for images nobody was
shown, or for another shopper. A token verifies one event of each kind (a replayed click is kept but not
counted); the marks live in the default cache, which must be shared (Redis) when several processes serve
the storefront.
"""
import hashlib

from django.core import signing
from django.core.cache import cache

from ...conf import settings

SALT = "imagegen.storefront.impression"
# The token's payload is readable (signed, not encrypted); a prefix of the stored key binds the shopper
# as well as the whole key would and keeps the token short.
KEY_CHARS = 32


def issue(key: str, product: int, image: int | None) -> str:
    """The token of ``image`` (None: the original photo) of ``product`` shown to shopper ``key``."""
    return signing.dumps([key[:KEY_CHARS], product, image], salt=SALT)


def shown(token: object, key: str, product: int) -> tuple[bool, int | None]:
    """(valid, image shown) for a token presented with an event of shopper ``key`` on ``product``."""
    if not isinstance(token, str) or len(token) > 300:
        return False, None
    try:
        claims = signing.loads(token, salt=SALT, max_age=settings.IMPRESSION_TOKEN_SECONDS)
    except signing.BadSignature:  # SignatureExpired included
        return False, None
    if not isinstance(claims, list) or len(claims) != 3 or claims[:2] != [key[:KEY_CHARS], product]:
        return False, None
    return True, claims[2]


def first_use(token: str, kind: str) -> bool:
    """Mark the token used for ``kind``; False when it already was."""
    digest = hashlib.sha256(token.encode()).hexdigest()[:32]
    return cache.add(f"imagegen:impression:{digest}:{kind}", 1, settings.IMPRESSION_TOKEN_SECONDS)
