"""REST API of bulk operations: start one over many products, follow it, cancel it."""
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..conf import settings
from ..models import BulkOperation
from ..services import bulk_report
from ..services.products import product_model
from .permissions import CanSeeJob, requires
from .serializers import BulkEditRequestSerializer, BulkGenerateRequestSerializer, BulkOperationSerializer
from .throttles import DEFAULT_THROTTLES, WRITE_THROTTLES
from .views import TooManyJobs, _as_api_error


def _described(request, operation: BulkOperation, *, code: int = status.HTTP_200_OK) -> Response:
    operation.report = bulk_report.report(operation)
    body = BulkOperationSerializer(operation, context={"request": request}).data
    headers = {"Location": str(body["url"])} if code == status.HTTP_202_ACCEPTED else None
    return Response(body, status=code, headers=headers)


def _started(request, start) -> Response:
    """202 with the bulk operation ``start()`` stored; its refusals as 400 or 429."""
    try:
        operation = start()
    except DjangoValidationError as exc:
        raise _as_api_error(exc) from exc
    except services.TooManyActiveJobs as exc:
        raise TooManyJobs(str(exc)) from exc
    return _described(request, operation, code=status.HTTP_202_ACCEPTED)


def _selection(data: dict):
    """The products the request names; unknown ids and empty categories are refused by name."""
    products = product_model().objects.all()
    if "product_ids" in data:
        wanted = set(data["product_ids"])
        products = products.filter(pk__in=wanted)
        missing = sorted(wanted - set(products.values_list("pk", flat=True)))
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
            raise ValidationError({"product_ids": [f"{len(missing)} unknown product id(s): {shown}."]})
    elif "category" in data:
        products = products.filter(**{settings.PRODUCT_CATEGORY_FIELD: data["category"]})
        if not products.exists():
            raise ValidationError({"category": [f"No product has the category {data['category']!r}."]})
    return products


class BulkGenerateView(APIView):
    """Start a bulk operation generating images for many products; answers 202 at once."""

    permission_classes = [requires("imagegen.generate_images")]
    throttle_classes = WRITE_THROTTLES

    @extend_schema(
        request=BulkGenerateRequestSerializer, responses={202: BulkOperationSerializer}, operation_id="bulk_generate",
        description="Product *i* of the selection (in order of id) gets seed `seed + i * count`. The jobs are "
        "created in the background; follow the operation at the returned URL.",
    )
    def post(self, request):
        params = BulkGenerateRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        return _started(request, lambda: services.bulk.request_bulk_generation(
            _selection(data), count=data["count"], seed=data["seed"], kind=data.get("kind"), user=request.user
        ))


class BulkEditView(APIView):
    """Start a bulk operation running one photo operation with the same options on many products' photos;
    answers 202 at once."""

    permission_classes = [requires("imagegen.edit_photos")]
    throttle_classes = WRITE_THROTTLES

    @extend_schema(
        request=BulkEditRequestSerializer, responses={202: BulkOperationSerializer}, operation_id="bulk_edit",
        description="The options are validated by the operation (400 naming the option). With a `seed` option, "
        "product *i* of the selection gets the seeds after product *i - 1*'s.",
    )
    def post(self, request):
        params = BulkEditRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        return _started(request, lambda: services.bulk.request_bulk_edit(
            _selection(data), data["operation"], options=data["options"], user=request.user
        ))


class BulkDetailView(APIView):
    """A bulk operation's progress, counts per state and summary."""

    permission_classes = [CanSeeJob]
    throttle_classes = DEFAULT_THROTTLES

    @extend_schema(responses={200: BulkOperationSerializer}, operation_id="bulk_retrieve")
    def get(self, request, pk: int):
        operation = get_object_or_404(BulkOperation, pk=pk)
        self.check_object_permissions(request, operation)
        return _described(request, operation)


class BulkCancelView(APIView):
    """Cancel a bulk operation: its expansion stops and its unfinished jobs are cancelled."""

    permission_classes = [requires("imagegen.generate_images")]
    throttle_classes = WRITE_THROTTLES

    @extend_schema(request=None, responses={200: BulkOperationSerializer}, operation_id="bulk_cancel")
    def post(self, request, pk: int):
        operation = get_object_or_404(BulkOperation, pk=pk)
        if not services.bulk.may_cancel(request.user, operation):
            raise PermissionDenied("You may cancel your own bulk operations; other people's need imagegen.change_job.")
        services.bulk.cancel(operation)
        return _described(request, operation)
