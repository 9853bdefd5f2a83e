"""Admin of trained model versions: their sample grids, curves and metrics, and (de)activation."""
from django.contrib import admin, messages
from django.utils.html import format_html_join

from .. import services
from ..models import ModelVersion
from .readonly import ReadOnlyModelAdmin
from .widgets import thumbnail


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyModelAdmin):
    list_display = ("__str__", "grid", "kind", "is_active", "categories_", "image_count", "training", "created_at")
    list_filter = ("kind", "is_active")
    readonly_fields = ["metrics_", "grid_large", "curve_large"]
    actions = ["activate", "deactivate"]

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
