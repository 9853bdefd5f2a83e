"""Authentication classes a host can list in ``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``.

API clients should use DRF's token authentication (``rest_framework.authtoken``; README "API"): a token
is checked with one indexed lookup, a password with a deliberately slow hash.
"""
from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import BasicScheme
from rest_framework import authentication, exceptions

from . import login_failures


class BasicAuthentication(authentication.BasicAuthentication):
    """DRF's HTTP basic authentication with failed attempts counted and refused (429) once too many.

    A username with a NUL character is answered as a wrong one: DRF hands the decoded username to the
    auth backends as it came, and on PostgreSQL the user lookup then fails with a DataError (text cannot
    contain NUL), so any client could turn any request into a 500 with one header.
    """

    def authenticate_credentials(self, userid, password, request=None):
        login_failures.refuse_if_blocked(request, userid)
        if "\x00" in userid:
            login_failures.record_failure(request, userid)
            raise exceptions.AuthenticationFailed(_("Invalid username/password."))
        try:
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            login_failures.record_failure(request, userid)
            raise


class BasicAuthenticationScheme(BasicScheme):
    """Keeps ``basicAuth`` in the OpenAPI schema: drf-spectacular matches DRF's class exactly, not subclasses."""

    target_class = "imagegen.api.authentication.BasicAuthentication"
