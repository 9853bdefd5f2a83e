"""System checks of the demo shop's own settings."""
from django.conf import settings
from django.core import checks


@checks.register(checks.Tags.security)
def check_secret_key(app_configs=None, **kwargs):
    if not settings.DEBUG and settings.SECRET_KEY == settings.PUBLISHED_SECRET_KEY:
        return [
            checks.Error(
                "SECRET_KEY is the demo key published in this repository, and DEBUG is off: anyone could forge "
                "sessions, password-reset links and the storefront's signed tokens.",
                hint='Set the SECRET_KEY environment variable to a long random value, e.g. the output of '
                '`python -c "import secrets; print(secrets.token_urlsafe(50))"`.',
                id="shop.E001",
            )
        ]
    return []
