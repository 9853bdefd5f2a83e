"""REST API views: they validate, call a service, and describe the result. Nothing else."""
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import services
from ..models import GeneratedImage, Job
from ..services.products import product_model
from .permissions import requires
from .serializers import GenerateRequestSerializer, GeneratedImageSerializer, JobSerializer, ReviewRequestSerializer


def _as_api_error(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages})


class ProductGenerateView(APIView):
    """Queue a job that generates images for one product."""

    permission_classes = [requires("imagegen.generate_images")]

    @extend_schema(request=GenerateRequestSerializer, responses={202: JobSerializer}, operation_id="products_generate")
    def post(self, request, product_id: int):
        product = get_object_or_404(product_model(), pk=product_id)
        params = GenerateRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        try:
            job = services.request_generation(product, user=request.user, **params.validated_data)
        except DjangoValidationError as exc:
            raise _as_api_error(exc) from exc
        body = JobSerializer(job, context={"request": request}).data
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": str(body["url"])})


class JobDetailView(generics.RetrieveAPIView):
    """A job's state and progress."""

    queryset = Job.objects.all()
    serializer_class = JobSerializer
    permission_classes = [requires("imagegen.view_job")]


class ProductImagesView(generics.ListAPIView):
    """A product's generated images: approved ones for everybody, all of them for reviewers."""

    serializer_class = GeneratedImageSerializer
    permission_classes = [AllowAny]

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


class ImageReviewView(APIView):
    """Approve or reject one generated image."""

    permission_classes = [requires("imagegen.review_generatedimage")]

    @extend_schema(request=ReviewRequestSerializer, responses={200: GeneratedImageSerializer}, operation_id="images_review")
    def post(self, request, pk: int):
        image = get_object_or_404(GeneratedImage, pk=pk)
        decision = ReviewRequestSerializer(data=request.data)
        decision.is_valid(raise_exception=True)
        services.review(image, decision.validated_data["decision"], request.user)
        image.refresh_from_db()
        return Response(GeneratedImageSerializer(image, context={"request": request}).data)
