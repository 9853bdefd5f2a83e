"""Admin of trained model versions: their sample grids, curves and metrics, and (de)activation."""
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html_join

from .. import services
from ..models import ModelVersion
from .readonly import ReadOnlyModelAdmin
from .widgets import thumbnail


def _dig(data: dict, path: tuple[str, ...]):
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return round(data, 3) if isinstance(data, float) else data


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyModelAdmin):
    list_display = ("__str__", "grid", "kind", "is_active", "categories_", "image_count", "training", "created_at")
    list_filter = ("kind", "is_active")
    readonly_fields = ["metrics_", "grid_large", "curve_large"]
    actions = ["compare", "activate", "deactivate"]
    # Rows of the comparison page: (label, path into ModelVersion.metrics).
    compared_metrics = [
        ("Steps", ("steps",)),
        ("Training seconds", ("seconds",)),
        ("Classifier-FID", ("evaluation", "overall", "fid")),
        ("KID", ("evaluation", "overall", "kid_mean")),
        ("Precision", ("evaluation", "overall", "precision")),
        ("Recall", ("evaluation", "overall", "recall")),
        ("Coverage", ("evaluation", "overall", "coverage")),
        ("Near copies", ("evaluation", "near_copies", "flagged")),
        ("Measured on", ("evaluation", "real_dir")),
    ]

    def has_activate_permission(self, request):
        return request.user.has_perm("imagegen.change_modelversion")

    @admin.display(description="Categories")
    def categories_(self, obj):
        return ", ".join(obj.categories)

    @admin.display(description="Training")
    def training(self, obj):
        shown = [(k, obj.metrics[k]) for k in ("steps", "seconds", "images_per_second") if k in obj.metrics]
        return format_html_join(", ", "{}: {}", shown)

    @admin.display(description="Metrics")
    def metrics_(self, obj):
        return format_html_join(", ", "{}: {}", sorted(obj.metrics.items()))

    @admin.display(description="Samples")
    def grid(self, obj):
        return thumbnail(obj.sample_grid, 120)

    @admin.display(description="Sample grid")
    def grid_large(self, obj):
        return thumbnail(obj.sample_grid, 480)

    @admin.display(description="Loss curves")
    def curve_large(self, obj):
        return thumbnail(obj.loss_curve, 480)

    @admin.action(description="Compare selected versions side by side")
    def compare(self, request, queryset):
        versions = list(queryset.order_by("created_at", "id"))
        rows = [(label, [_dig(v.metrics, path) for v in versions]) for label, path in self.compared_metrics]
        context = {
            **self.admin_site.each_context(request),
            "title": "Compare model versions",
            "opts": self.model._meta,
            "versions": versions,
            "metric_rows": rows,
        }
        return TemplateResponse(request, "admin/imagegen/compare_versions.html", context)

    @admin.action(description="Activate selected versions", permissions=["activate"])
    def activate(self, request, queryset):
        for version in queryset:
            services.activate(version)
        self.message_user(request, f"Activated {queryset.count()} version(s).", messages.SUCCESS)

    @admin.action(description="Deactivate selected versions", permissions=["activate"])
    def deactivate(self, request, queryset):
        for version in queryset:
            services.deactivate(version)
        self.message_user(request, f"Deactivated {queryset.count()} version(s).", messages.SUCCESS)
