"""Request hygiene the demo shop adds in front of Django's own middleware."""
import re

from django.conf import settings

# Django makes session keys of 32 lowercase letters and digits; anything else cannot name a session.
_SESSION_KEY = re.compile(r"[a-z0-9]{32}")


class DropMalformedSessionCookie:
    """Forget a session cookie that cannot be a session key before SessionMiddleware looks it up.

    The database session store puts the cookie's value into a query as it came, and PostgreSQL refuses text
    holding a NUL character (a quoted cookie may spell one as "\\000"), so any client could otherwise turn
    any page into a 500. Such a request simply has no session, as with an expired cookie."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        value = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if value is not None and not _SESSION_KEY.fullmatch(value):
            del request.COOKIES[settings.SESSION_COOKIE_NAME]
        return self.get_response(request)
