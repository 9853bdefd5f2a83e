"""REST API views: they validate, call a service, and describe the result. Nothing else."""
from collections.abc import Callable

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..models import GeneratedImage, Job, SourcePhoto
from ..services.products import product_model
from ..services.uploads import MESSAGE_NO_FILE, MESSAGE_SEVERAL_FILES, UploadSizeLimitHandler, too_large_message
from .permissions import CanSeeJob, requires
from .throttles import DEFAULT_THROTTLES, WRITE_THROTTLES
from .serializers import (
    GenerateRequestSerializer,
    GeneratedImageSerializer,
    JobSerializer,
    ReviewRequestSerializer,
    SourcePhotoSerializer,
)


def _as_api_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})


class TooManyJobs(APIException):
    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "too_many_active_jobs"


class ProductGenerateView(APIView):
    """Queue a job that generates images for one product."""

    permission_classes = [requires("imagegen.generate_images")]
    throttle_classes = WRITE_THROTTLES

    @extend_schema(request=GenerateRequestSerializer, responses={202: JobSerializer}, operation_id="products_generate")
    def post(self, request, product_id: int):
        product = get_object_or_404(product_model(), pk=product_id)
        params = GenerateRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        return queued(request, lambda: services.request_generation(product, user=request.user, **params.validated_data))


def queued(request, start: Callable[[], Job]) -> Response:
    """202 with the job ``start()`` queued and its URL in ``Location``; its refusals as 400 or 429."""
    try:
        job = start()
    except DjangoValidationError as exc:
        raise _as_api_error(exc) from exc
    except services.TooManyActiveJobs as exc:
        raise TooManyJobs(str(exc)) from exc
    body = JobSerializer(job, context={"request": request}).data
    return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["url"])})


class JobDetailView(generics.RetrieveAPIView):
    """A job's state and progress."""

    queryset = Job.objects.all()
    serializer_class = JobSerializer
    permission_classes = [CanSeeJob]
    throttle_classes = DEFAULT_THROTTLES


class ProductImagesView(generics.ListAPIView):
    """A product's generated images: approved ones for everybody, all of them for reviewers."""

    serializer_class = GeneratedImageSerializer
    permission_classes = [AllowAny]
    throttle_classes = DEFAULT_THROTTLES

    @extend_schema(
        parameters=[OpenApiParameter("review_state", str, enum=[s for s, _ in GeneratedImage.ReviewState.choices])]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        product = get_object_or_404(product_model(), pk=self.kwargs["product_id"])
        images = services.visible_images(product.pk, self.request.user)
        state = self.request.query_params.get("review_state")
        if state:
            if state not in GeneratedImage.ReviewState.values:
                raise ValidationError({"review_state": f"Must be one of: {', '.join(GeneratedImage.ReviewState.values)}."})
            images = images.filter(review_state=state)
        return images


class ImageDetailView(generics.RetrieveAPIView):
    """One generated image. Images not approved yet are answered 404 to anybody who may not review them,
    so the storefront cannot even learn that they exist."""

    serializer_class = GeneratedImageSerializer
    permission_classes = [AllowAny]
    throttle_classes = DEFAULT_THROTTLES

    def get_queryset(self):
        return services.images_visible_to(self.request.user)


class ImageReviewView(APIView):
    """Approve or reject one generated image."""

    permission_classes = [requires("imagegen.review_generatedimage")]
    throttle_classes = WRITE_THROTTLES

    @extend_schema(request=ReviewRequestSerializer, responses={200: GeneratedImageSerializer}, operation_id="images_review")
    def post(self, request, pk: int):
        image = get_object_or_404(GeneratedImage, pk=pk)
        decision = ReviewRequestSerializer(data=request.data)
        decision.is_valid(raise_exception=True)
        services.review(image, decision.validated_data["decision"], request.user)
        image.refresh_from_db()
        return Response(GeneratedImageSerializer(image, context={"request": request}).data)


# Spelt out: a serializer's FileField is described as binary only where the host sets drf-spectacular's
# COMPONENT_SPLIT_REQUEST, and the view reads request.FILES itself (a DRF ImageField would hand the bytes to
# every Pillow decoder to "verify" them).
class LimitedUploadsMixin:
    """For views that take files: each is dropped while it streams in once it passes the upload byte limit,
    instead of filling memory or a temporary file (Django's own size settings do not count files)."""

    def initialize_request(self, request, *args, **kwargs):
        # Before anything reads the body.
        self.size_limit = UploadSizeLimitHandler(request)
        request.upload_handlers.insert(0, self.size_limit)
        return super().initialize_request(request, *args, **kwargs)

    def one_file(self, request, field: str, *, missing: str | None = None):
        """The one file sent as ``field``; None when none was sent and ``missing`` is None, else a 400."""
        # Reading FILES parses the body, which is what fills too_large_fields.
        sent = request.FILES.getlist(field) if hasattr(request.FILES, "getlist") else []
        if field in self.size_limit.too_large_fields:
            raise ValidationError({field: [too_large_message()]})
        if len(sent) > 1:
            raise ValidationError({field: [MESSAGE_SEVERAL_FILES]})
        if not sent and missing is not None:
            raise ValidationError({field: [missing]})
        return sent[0] if sent else None


UPLOAD_BODY_SCHEMA = {
    "type": "object",
    "properties": {
        "image": {
            "type": "string",
            "format": "binary",
            "description": "One photo: JPEG, PNG, WebP or a still GIF (IMAGEGEN_UPLOAD_FORMATS), at most "
            "IMAGEGEN_UPLOAD_MAX_BYTES and IMAGEGEN_UPLOAD_MAX_PIXELS. Stored re-encoded as PNG.",
        }
    },
    "required": ["image"],
}


class ProductPhotosView(LimitedUploadsMixin, generics.ListAPIView):
    """A product's source photos (GET), and uploading one more to train on (POST, multipart field ``image``).

    The upload is decoded, checked and re-encoded as PNG by ``services.uploads`` before anything is stored;
    the bytes that were sent are never stored. Refusals are 400 ``{"image": [reason]}``."""

    serializer_class = SourcePhotoSerializer
    parser_classes = [MultiPartParser]
    throttle_classes = WRITE_THROTTLES
    upload_permission = requires("imagegen.add_sourcephoto")
    list_permission = requires("imagegen.view_sourcephoto")

    def get_permissions(self):
        return [(self.upload_permission if self.request.method == "POST" else self.list_permission)()]

    def get_queryset(self):
        product = get_object_or_404(product_model(), pk=self.kwargs["product_id"])
        return SourcePhoto.objects.filter(product=product)

    @extend_schema(
        request={"multipart/form-data": UPLOAD_BODY_SCHEMA},
        responses={201: SourcePhotoSerializer},
        operation_id="products_photos_upload",
        description="Upload one photo of the product to train on. It is decoded (only the formats in "
        "IMAGEGEN_UPLOAD_FORMATS), checked (size, pixels, one frame, complete) and stored re-encoded as PNG "
        "without metadata; anything else is answered 400 with the reason under `image`.",
    )
    def post(self, request, product_id: int):
        product = get_object_or_404(product_model(), pk=product_id)
        sent = self.one_file(request, "image", missing=MESSAGE_NO_FILE)
        try:
            photo = services.add_source_photo(product, sent, user=request.user)
        except DjangoValidationError as exc:
            raise _as_api_error(exc) from exc
        return Response(SourcePhotoSerializer(photo, context={"request": request}).data, status=status.HTTP_201_CREATED)
