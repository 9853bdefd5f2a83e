"""API views that queue an operation on a product's real photo: one route per registered operation
(``services.operations``), derived from its declaration with its request serializer and schema."""
from functools import cache

from django.shortcuts import get_object_or_404
from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.views import APIView

from .. import services
from ..services import operations
from ..services.operations import Operation
from ..services.products import product_model
from .permissions import requires
from .serializers import JobSerializer
from .throttles import WRITE_THROTTLES
from .views import LimitedUploadsMixin, queued


# What every edit request takes besides the operation's options. (No docstrings on request serializers:
# drf-spectacular would publish them as the schema components' descriptions.)
class EditRequestSerializer(serializers.Serializer):
    source_photo = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="Id of one of the product's uploaded photos; without it, the product's primary photo.",
    )


def _upload_unchecked(self, value):
    # The upload is decoded and checked by services.masks; the operation's own mask rule is for stored names.
    return value


@cache
def request_serializer(operation: Operation) -> type[serializers.Serializer]:
    """The request of ``operation``'s route: ``source_photo``, its options, and for an operation that takes a
    mask the image itself (``mask``). Named ``<Operation>RequestSerializer``: its schema component is
    ``<Operation>Request``."""
    attrs = {"__module__": __name__}
    if operation.takes_mask:
        attrs["mask"] = serializers.FileField(
            required=False,
            help_text="multipart/form-data only: an image of the photo's proportions, white where to repair and black "
            "(or transparent) where to keep; scaled to the photo. Decoded under the upload rules.",
        )
        attrs["validate_mask"] = _upload_unchecked
    name = f"{type(operation).__name__}RequestSerializer"
    return type(name, (EditRequestSerializer, operation.serializer_class), attrs)


class ProductEditView(LimitedUploadsMixin, APIView):
    """Queue ``operation`` on the product's primary photo, or on its uploaded photo ``source_photo``."""

    operation: str
    request_serializer: type
    permission_classes = [requires("imagegen.edit_photos")]
    throttle_classes = WRITE_THROTTLES

    def post(self, request, product_id: int):
        product = get_object_or_404(product_model(), pk=product_id)
        # First: a mask dropped for its size must be reported as such, not as "nothing marked".
        mask = self.one_file(request, "mask")
        params = self.request_serializer(data=request.data)
        params.is_valid(raise_exception=True)
        options = dict(params.validated_data)
        source_photo = options.pop("source_photo", None)
        options.pop("mask", None)
        return queued(
            request,
            lambda: services.request_edit(
                product, self.operation, options=options, source_photo=source_photo, mask=mask, user=request.user
            ),
        )


@cache
def view_for(operation: Operation) -> type[ProductEditView]:
    """``operation``'s view, with its schema: operation id ``products_<name>``, 202 with the job."""
    serializer = request_serializer(operation)
    request = {"application/json": serializer, "multipart/form-data": serializer} if operation.takes_mask else serializer
    view = type(
        f"Product{type(operation).__name__}View", (ProductEditView,),
        {"__module__": __name__, "operation": operation.name, "request_serializer": serializer},
    )
    return extend_schema_view(
        post=extend_schema(
            request=request, responses={202: JobSerializer}, operation_id=f"products_{operation.name}",
            description=operation.api_description,
        )
    )(view)


def urlpatterns() -> list:
    """``products/<id>/<path>/`` named ``product-<name>``, for every registered operation."""
    return [
        path(f"products/<int:product_id>/{operation.url_path}/", view_for(operation).as_view(), name=f"product-{operation.name}")
        for operation in operations.all_operations()
    ]
