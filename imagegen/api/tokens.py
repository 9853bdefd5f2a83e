"""``POST api/auth/token/``: DRF's token for a username and password, with failed attempts counted like
basic authentication's (``login_failures``). Routed only when the host installs ``rest_framework.authtoken``.
"""
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from . import login_failures
from .throttles import WRITE_THROTTLES


class ObtainTokenView(ObtainAuthToken):
    throttle_classes = WRITE_THROTTLES

    @extend_schema(
        operation_id="auth_token",
        request=inline_serializer("TokenRequest", {"username": serializers.CharField(), "password": serializers.CharField()}),
        responses={200: inline_serializer("TokenResponse", {"token": serializers.CharField()})},
        description="The API token of a user (made on first request); send it as `Authorization: Token <token>`. "
        "Wrong credentials are counted per address and per username, and refused with 429 once too many.",
    )
    def post(self, request, *args, **kwargs):
        username = request.data.get("username") if hasattr(request.data, "get") else None
        username = username if isinstance(username, str) else ""
        login_failures.refuse_if_blocked(request, username)
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            login_failures.record_failure(request, username)
            serializer.is_valid(raise_exception=True)
        token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
        return Response({"token": token.key})
