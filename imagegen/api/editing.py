"""API views that queue an operation on a product's real photo (one endpoint per operation)."""
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.views import APIView

from .. import services
from ..services.products import product_model
from .permissions import requires
from .serializers import (
    BackgroundRequestSerializer,
    BrandLookRequestSerializer,
    EnhanceRequestSerializer,
    JobSerializer,
    RepairRequestSerializer,
)
from .throttles import WRITE_THROTTLES
from .views import LimitedUploadsMixin, queued


class ProductEditView(LimitedUploadsMixin, APIView):
    """Queue ``operation`` on the product's primary photo, or on its uploaded photo ``source_photo``."""

    operation: str
    request_serializer: type
    permission_classes = [requires("imagegen.edit_photos")]
    throttle_classes = WRITE_THROTTLES

    def post(self, request, product_id: int):
        product = get_object_or_404(product_model(), pk=product_id)
        params = self.request_serializer(data=request.data)
        params.is_valid(raise_exception=True)
        options = dict(params.validated_data)
        source_photo = options.pop("source_photo", None)
        options.pop("mask", None)
        mask = self.one_file(request, "mask")
        return queued(
            request,
            lambda: services.request_edit(
                product, self.operation, options=options, source_photo=source_photo, mask=mask, user=request.user
            ),
        )


def _schema(serializer: type, operation: str, description: str, *, multipart: bool = False):
    request = {"application/json": serializer, "multipart/form-data": serializer} if multipart else serializer
    return extend_schema_view(
        post=extend_schema(
            request=request, responses={202: JobSerializer}, operation_id=f"products_{operation}", description=description
        )
    )


@_schema(
    EnhanceRequestSerializer,
    "enhance",
    "Denoise, deblur, remove JPEG artefacts and correct exposure and colour cast of the photo with the shop's "
    "own trained restoration model, optionally upscaling it x2 or x4. The result is a new image, reviewed "
    "like generated ones; the photo is not changed.",
)
class ProductEnhanceView(ProductEditView):
    operation = "enhance"
    request_serializer = EnhanceRequestSerializer


@_schema(
    BackgroundRequestSerializer,
    "background",
    "Cut the product out of the photo and put it, centred, on pure white (or a colour, or transparency), "
    "filling `fill` of the frame. The result is a new image, reviewed like generated ones.",
)
class ProductBackgroundView(ProductEditView):
    operation = "background"
    request_serializer = BackgroundRequestSerializer


@_schema(
    BrandLookRequestSerializer,
    "brandlook",
    "Map the photo to the colour and tone of the reference products' photos (the shop's brand look) with the "
    "shop's own trained colour-mapping model, keeping shape and detail. The result is a new image, reviewed "
    "like generated ones.",
)
class ProductBrandLookView(ProductEditView):
    operation = "brandlook"
    request_serializer = BrandLookRequestSerializer


@_schema(
    RepairRequestSerializer,
    "repair",
    "Fill the marked regions (scratches, stickers, dust) with the shop's own trained inpainting model; every "
    "pixel outside them stays the photo's. Mark them as rectangles (`regions`, JSON) or as a mask image "
    "(`mask`, multipart/form-data: white = repair, black or transparent = keep, the photo's proportions, at "
    "most half the photo). The result is a new image, reviewed like generated ones.",
    multipart=True,
)
class ProductRepairView(ProductEditView):
    operation = "repair"
    request_serializer = RepairRequestSerializer
