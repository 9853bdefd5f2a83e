"""The public storefront API: a shopper's images of a product, their events, and opting out. Anonymous
(no session, so no CSRF and no database session lookup), read-mostly and throttled per address."""
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _l
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from ..api.throttles import StorefrontThrottle
from ..api.views import _as_api_error
from .services import serving, shoppers


class _Public(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [StorefrontThrottle]


class StorefrontImageSerializer(serializers.Serializer):
    id = serializers.IntegerField(allow_null=True, help_text="The variant's image id; null for the original photo.")
    url = serializers.CharField()
    arm = serializers.ChoiceField(choices=["original", "variant"])


class StorefrontImagesSerializer(serializers.Serializer):
    product = serializers.IntegerField()
    segment = serializers.IntegerField(allow_null=True, help_text="The shopper's segment; null: default images.")
    personalized = serializers.BooleanField(help_text="Whether the image shown first is a personalized variant.")
    shown = StorefrontImageSerializer(allow_null=True, help_text="The image to show (the bandit's choice).")
    images = StorefrontImageSerializer(many=True, help_text="Every image to offer, the shown one first.")
    token = serializers.CharField(
        allow_null=True,
        help_text=_l(
            "Impression token of the shown image (signed: this shopper, product and image; valid "
            "IMAGEGEN_IMPRESSION_TOKEN_SECONDS). Send it back with the shopper's events on this product: only "
            "events carrying it count for the A/B results and the segments. Null without a shopper id or for a "
            "shopper who opted out."
        ),
    )


class EventSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=sorted(shoppers.EVENT_KINDS))
    product = serializers.IntegerField(min_value=1)
    image = serializers.IntegerField(
        min_value=1, required=False, allow_null=True,
        help_text=_l(
            "An approved image of the product the shopper saw (its id). Null or absent: the image the token was "
            "issued for (the original photo when that was shown); without a valid token, not known."
        ),
    )
    token = serializers.CharField(
        required=False, allow_null=True,
        help_text=_l(
            "The impression token the images endpoint handed out with this product. With it (valid, of this "
            "shopper and product, naming the same image) the event is verified and counts for the A/B results "
            "and the segments, once per token and kind; without it the event is kept but counts for nothing. "
            "Impressions are counted when the token is issued, so posted impressions never count."
        ),
    )
    at = serializers.DateTimeField(required=False, help_text="When it happened (ISO 8601 with a zone); default now.")


class EventsRequestSerializer(serializers.Serializer):
    """The body, for the schema; ``services.shoppers.clean_events`` checks it (one place for the rules)."""

    shopper = serializers.CharField(help_text="The storefront's opaque shopper id (8-128 characters; not an e-mail).")
    events = EventSerializer(many=True)


class ShopperRequestSerializer(serializers.Serializer):
    shopper = serializers.CharField()


class StorefrontImagesView(_Public):
    @extend_schema(
        parameters=[OpenApiParameter("shopper", str, description="The storefront's opaque shopper id; without it, the default images.")],
        responses={200: StorefrontImagesSerializer},
        operation_id="storefront_product_images",
        description="The approved images of a product for this shopper's segment and the original photo, the one "
        "to show first chosen by the A/B bandit (the impression is recorded), and the impression token to send "
        "back with the shopper's events. Falls back to the original photo for "
        "unknown shoppers, shoppers without a segment or who opted out, and segments without approved variants.",
    )
    def get(self, request, product_id: int):
        shopper_id = request.query_params.get("shopper")
        try:
            body = serving.images_for(product_id, shopper_id)
        except serving.UnknownProduct:
            raise Http404("No such product.") from None
        except DjangoValidationError as exc:
            raise _as_api_error(exc) from exc
        return Response(body)


class StorefrontEventsView(_Public):
    @extend_schema(
        request=EventsRequestSerializer,
        responses={202: {"type": "object", "properties": {"accepted": {"type": "integer"}}}},
        operation_id="storefront_events",
        description="Record up to IMAGEGEN_EVENTS_PER_REQUEST events of one shopper (all or none: a bad one is a 400 "
        "and nothing is stored; an unknown product, or an image that is not an approved image of the event's "
        "product, is the same 400 whichever it is). Nothing is kept for a shopper who opted out (accepted: 0). "
        "Only events carrying the impression token of the images endpoint count for the A/B results and the "
        "segments.",
    )
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        try:
            accepted = shoppers.record_events(data.get("shopper"), data.get("events"))
        except DjangoValidationError as exc:
            raise _as_api_error(exc) from exc
        return Response({"accepted": accepted}, status=status.HTTP_202_ACCEPTED)


class StorefrontOptOutView(_Public):
    @extend_schema(
        request=ShopperRequestSerializer, responses={204: None}, operation_id="storefront_opt_out",
        description="Forget the shopper's events and keep none from now on; they get the default images.",
    )
    def post(self, request):
        data = request.data if isinstance(request.data, dict) else {}
        try:
            shoppers.opt_out(data.get("shopper"))
        except DjangoValidationError as exc:
            raise _as_api_error(exc) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)
