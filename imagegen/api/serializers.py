"""Shapes of the REST API's requests and answers."""
from rest_framework import serializers

from ..conf import settings
from ..models import BulkOperation, GeneratedImage, Job, SourcePhoto
from ..jobcore.seeds import SEED_MAX


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


class SelectionSerializer(serializers.Serializer):
    """Which products (exactly one of ``product_ids``, ``category`` or ``all``)."""

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


class BulkGenerateRequestSerializer(SelectionSerializer, GenerateRequestSerializer):
    """Which products (exactly one of ``product_ids``, ``category`` or ``all``), and what each one gets."""


class BulkEditRequestSerializer(SelectionSerializer):
    """Which products, the photo operation and its options (the operation's own, as its product route takes them)."""

    operation = serializers.CharField(help_text="The photo operation's name, e.g. scene, background, enhance.")
    options = serializers.DictField(required=False, default=dict, help_text="The operation's options.")


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
