"""Authentication classes a host can list in ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``."""
from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import BasicScheme
from rest_framework import authentication, exceptions


class BasicAuthentication(authentication.BasicAuthentication):
    """DRF's HTTP basic authentication, answering a username with a NUL character as a wrong one (403/401).

    DRF hands the decoded username to the auth backends as it came; on PostgreSQL the user lookup then fails
    with a DataError (text cannot contain NUL), so any client could turn any request into a 500 with one
    header. No account can have such a name: Django's forms refuse NUL characters.
    """

    def authenticate_credentials(self, userid, password, request=None):
        if "\x00" in userid:
            raise exceptions.AuthenticationFailed(_("Invalid username/password."))
        return super().authenticate_credentials(userid, password, request)


class BasicAuthenticationScheme(BasicScheme):
    """Keeps ``basicAuth`` in the OpenAPI schema: drf-spectacular matches DRF's class exactly, not subclasses."""

    target_class = "imagegen.api.authentication.BasicAuthentication"
