"""REST API of scene sets: list and create them, upload their scene photos, train their scene generators.
Putting a product in a scene is the "scene" photo operation's route (``api.editing``)."""
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from ..models import ScenePhoto, SceneSet
from ..services import scene_sets
from ..services.uploads import MESSAGE_NO_FILE
from .permissions import requires
from .serializers import JobSerializer
from .throttles import DEFAULT_THROTTLES, WRITE_THROTTLES
from .views import UPLOAD_BODY_SCHEMA, LimitedUploadsMixin, _as_api_error, queued


class ScenePhotoSerializer(serializers.ModelSerializer):
    image = serializers.ImageField(read_only=True, use_url=True)

    class Meta:
        model = ScenePhoto
        fields = ["id", "scene_set", "image", "width", "height", "origin", "product_id", "original_name", "created_at"]
        read_only_fields = fields


class SceneSetSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="imagegen-api:scene-set-detail")
    photo_count = serializers.SerializerMethodField(help_text=_("Backdrop photos the set holds."))
    generator = serializers.SerializerMethodField(help_text=_("Id of the active scene generator version, or null."))
    product_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=100_000,
        help_text=_("Products whose photos give the backdrops (source \"backdrops\")."),
    )

    class Meta:
        model = SceneSet
        fields = ["id", "url", "name", "source", "colour", "product_ids", "photo_count", "generator", "created_at"]
        read_only_fields = ["id", "url", "photo_count", "generator", "created_at"]

    def get_photo_count(self, obj: SceneSet) -> int:
        return obj.photos.count()

    def get_generator(self, obj: SceneSet) -> int | None:
        version = scene_sets.active_generator(obj)
        return version.pk if version else None

    def create(self, validated_data: dict) -> SceneSet:
        try:
            return scene_sets.create_scene_set(user=self.context["request"].user, **validated_data)
        except DjangoValidationError as exc:
            raise _as_api_error(exc) from exc


class SceneTrainRequestSerializer(serializers.Serializer):
    steps = serializers.IntegerField(min_value=1, max_value=10_000_000, required=False)
    max_minutes = serializers.FloatField(min_value=0.01, required=False, allow_null=True)
    batch_size = serializers.IntegerField(min_value=1, max_value=256, required=False, allow_null=True)
    seed = serializers.IntegerField(min_value=0, required=False, allow_null=True)


class SceneSetListView(generics.ListCreateAPIView):
    """Scene sets (GET) and a new one (POST): its name, source ("uploaded", "backdrops" with `product_ids`, or
    "studio" with `colour`)."""

    serializer_class = SceneSetSerializer
    queryset = SceneSet.objects.all()
    throttle_classes = WRITE_THROTTLES

    def get_permissions(self):
        return [requires("imagegen.add_sceneset" if self.request.method == "POST" else "imagegen.view_sceneset")()]


class SceneSetDetailView(generics.RetrieveAPIView):
    """One scene set."""

    serializer_class = SceneSetSerializer
    queryset = SceneSet.objects.all()
    permission_classes = [requires("imagegen.view_sceneset")]
    throttle_classes = DEFAULT_THROTTLES


class SceneSetPhotosView(LimitedUploadsMixin, generics.ListAPIView):
    """A scene set's backdrop photos (GET), and uploading one more (POST, multipart field `image`), under the
    product photos' upload rules; refusals are 400 `{"image": [reason]}`."""

    serializer_class = ScenePhotoSerializer
    parser_classes = [MultiPartParser]
    throttle_classes = WRITE_THROTTLES

    def get_permissions(self):
        return [requires("imagegen.add_scenephoto" if self.request.method == "POST" else "imagegen.view_scenephoto")()]

    def get_queryset(self):
        return get_object_or_404(SceneSet, pk=self.kwargs["pk"]).photos.all()

    @extend_schema(request={"multipart/form-data": UPLOAD_BODY_SCHEMA}, responses={201: ScenePhotoSerializer},
                   operation_id="scene_sets_photos_upload")
    def post(self, request, pk: int):
        scene_set = get_object_or_404(SceneSet, pk=pk)
        sent = self.one_file(request, "image", missing=MESSAGE_NO_FILE)
        try:
            photo = scene_sets.add_scene_photo(scene_set, sent, user=request.user)
        except DjangoValidationError as exc:
            raise _as_api_error(exc) from exc
        return Response(ScenePhotoSerializer(photo, context={"request": request}).data, status=status.HTTP_201_CREATED)


class SceneSetTrainView(APIView):
    """Queue the training of the set's scene generator; 400 with the number of photos needed when it has too few."""

    permission_classes = [requires("imagegen.train_generator")]
    throttle_classes = WRITE_THROTTLES

    @extend_schema(request=SceneTrainRequestSerializer, responses={202: JobSerializer},
                   operation_id="scene_sets_train")
    def post(self, request, pk: int):
        scene_set = get_object_or_404(SceneSet, pk=pk)
        params = SceneTrainRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        options = {k: v for k, v in params.validated_data.items() if v is not None}
        return queued(request, lambda: scene_sets.request_scene_training(scene_set, user=request.user, **options))
