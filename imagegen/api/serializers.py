"""Shapes of the REST API's requests and answers."""
from rest_framework import serializers

from ..conf import settings
from ..models import BulkOperation, GeneratedImage, Job, SourcePhoto
from ..services.jobs import SEED_MAX


class GenerateRequestSerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=1, default=4)
    seed = serializers.IntegerField(min_value=0, max_value=SEED_MAX, required=False, allow_null=True, default=None)
    kind = serializers.CharField(required=False, allow_blank=False)

    def validate_count(self, value: int) -> int:
        if value > settings.MAX_IMAGES_PER_JOB:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {settings.MAX_IMAGES_PER_JOB}.")
        return value

    def validate_kind(self, value: str) -> str:
        if value not in settings.KINDS:
            raise serializers.ValidationError(f"Unknown kind; choose one of: {', '.join(settings.KINDS)}.")
        return value


class JobSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="imagegen-api:job-detail")

    class Meta:
        model = Job
        fields = [
            "id", "url", "kind", "state", "progress", "message", "error", "attempts", "product", "parameters",
            "model_version", "created_at", "started_at", "finished_at",
        ]
        read_only_fields = fields


class GeneratedImageSerializer(serializers.ModelSerializer):
    image = serializers.ImageField(read_only=True, use_url=True)

    class Meta:
        model = GeneratedImage
        fields = [
            "id", "product", "kind", "image", "width", "height", "review_state", "review_note", "quality_score", "seed",
            "model_version", "job", "source_image", "parameters", "created_at", "reviewed_at",
        ]
        read_only_fields = fields


class ReviewRequestSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[GeneratedImage.ReviewState.APPROVED, GeneratedImage.ReviewState.REJECTED])


class SourcePhotoSerializer(serializers.ModelSerializer):
    image = serializers.ImageField(read_only=True, use_url=True, help_text="imagegen's PNG re-encoding of the upload.")

    class Meta:
        model = SourcePhoto
        fields = ["id", "product", "image", "width", "height", "source_format", "original_name", "uploaded_by", "created_at"]
        read_only_fields = fields


class _EditRequestSerializer(serializers.Serializer):
    source_photo = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, default=None,
        help_text="Id of one of the product's uploaded photos; without it, the product's primary photo.",
    )


class EnhanceRequestSerializer(_EditRequestSerializer):
    upscale = serializers.ChoiceField(choices=[1, 2, 4], default=1, help_text="Enlarge the photo this many times.")


class BackgroundRequestSerializer(_EditRequestSerializer):
    background = serializers.RegexField(
        r"^(white|transparent|#[0-9a-fA-F]{6})$", default="white", max_length=11,
        help_text='"white" (pure #FFFFFF), "transparent", or a colour "#RRGGBB".',
    )
    fill = serializers.FloatField(
        min_value=0.3, max_value=1.0, default=0.85, help_text="Share of the frame's longer side the product fills."
    )
    shadow = serializers.BooleanField(
        default=False, help_text="A soft shadow under the product (the background is then no longer pure white there)."
    )
    size = serializers.IntegerField(
        min_value=64, max_value=4096, required=False, allow_null=True, default=None,
        help_text="Side of the square result in pixels; without it, the photo's longer side.",
    )
    backdrop = serializers.ChoiceField(
        choices=["plain", "studio"], default="plain",
        help_text='"plain": one flat colour; "studio": a generated studio sweep (wall bending into the floor) in '
        "the background colour (light grey for white), the same for every product. Not with transparent.",
    )


class BrandLookRequestSerializer(_EditRequestSerializer):
    references = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=12,
        help_text="Ids of 1 to 12 products whose primary photos show the look (colour and tone) to give this one.",
    )


class RepairRequestSerializer(_EditRequestSerializer):
    regions = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField(min_value=0.0, max_value=1.0), min_length=4, max_length=4),
        min_length=1, max_length=20, required=False,
        help_text="Rectangles [left, top, right, bottom] to repair, as shares (0 to 1) of the photo's width and height.",
    )
    detect = serializers.ChoiceField(
        choices=["backdrop_specks"], required=False, allow_null=True,
        help_text="Also find what to repair automatically: \"backdrop_specks\" marks dust and specks on a plain "
        "backdrop (never on the product); the job fails with the reason on a photo where that is not reliable.",
    )
    mask = serializers.FileField(
        required=False,
        help_text="multipart/form-data only: an image of the photo's proportions, white where to repair and black "
        "(or transparent) where to keep; scaled to the photo. Decoded under the upload rules.",
    )


class BulkGenerateRequestSerializer(GenerateRequestSerializer):
    """Which products (exactly one of ``product_ids``, ``category`` or ``all``), and what each one gets."""

    product_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, allow_empty=False, max_length=100_000,
        help_text="Ids of the products; every one must exist.",
    )
    category = serializers.CharField(
        required=False, allow_blank=False, max_length=200,
        help_text="Every product of this category (as IMAGEGEN_PRODUCT_CATEGORY_FIELD names it).",
    )
    all = serializers.BooleanField(required=False, default=False, help_text="Every product of the shop.")

    def validate(self, data: dict) -> dict:
        chosen = [name for name in ("product_ids", "category") if name in data] + (["all"] if data.get("all") else [])
        if len(chosen) != 1:
            raise serializers.ValidationError("Give exactly one of product_ids, category or all=true.")
        return data


class BulkCountsSerializer(serializers.Serializer):
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    failed = serializers.IntegerField()
    cancelled = serializers.IntegerField()


class FailureReasonSerializer(serializers.Serializer):
    error = serializers.CharField()
    count = serializers.IntegerField()


class BulkOperationSerializer(serializers.ModelSerializer):
    """An operation with its report (``services.bulk_report.report``, set as ``report`` by the view)."""

    url = serializers.HyperlinkedIdentityField(view_name="imagegen-api:bulk-detail")
    progress = serializers.IntegerField(source="report.progress", help_text="Share (0-100) of its jobs finished.")
    jobs = serializers.IntegerField(source="report.jobs", help_text="Jobs created so far.")
    counts = BulkCountsSerializer(source="report.counts", help_text="Its jobs per state.")
    images = serializers.IntegerField(source="report.images", help_text="Images its jobs made.")
    failure_reasons = FailureReasonSerializer(
        source="report.failure_reasons", many=True, help_text="The most common reasons its jobs failed, with counts."
    )
    duration_seconds = serializers.FloatField(source="report.duration_seconds", help_text="From request to finish (or now).")

    class Meta:
        model = BulkOperation
        fields = [
            "id", "url", "operation", "state", "parameters", "total", "expanded", "skipped", "error", "progress",
            "jobs", "counts", "images", "failure_reasons", "duration_seconds", "created_at", "started_at",
            "expanded_at", "finished_at",
        ]
        read_only_fields = fields
