"""Admin of trained model versions: their sample grids, curves and metrics, and (de)activation."""
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

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
    readonly_fields = ["activation_", "near_copies_", "metrics_", "grid_large", "curve_large"]
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
        ("Near-copy test p-value", ("evaluation", "near_copies", "p_value")),
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

    @admin.display(description=_("Activation"))
    def activation_(self, obj):
        return obj.metrics.get("activation", "")

    @admin.display(description=_("Near copies of training photos"))
    def near_copies_(self, obj):
        copies = (obj.metrics.get("evaluation") or {}).get("near_copies")
        if not copies:
            return _("Not measured.")
        summary = format_html(
            "<p>{}</p>",
            _("%(flagged)s of %(total)s samples are flagged as near copies of a training photo (closer to it than "
              "nearly all training photos are to their nearest other one, or much closer to it than to the next); "
              "%(held)s of %(held_total)s held-out photos are (%(test)s, p = %(p).3g). %(pixel)s of the flagged "
              "samples are confirmed by the pixel check.") % {
                "flagged": copies.get("flagged", 0), "total": copies.get("generated_total", "?"),
                "held": copies.get("held_out_flagged", "?"), "held_total": copies.get("held_out_total", "?"),
                "test": copies.get("test", "?"), "p": copies.get("p_value", 1.0), "pixel": copies.get("pixel_confirmed", "?"),
            },
        )
        if not obj.near_copy_sheet:
            return summary
        captions = format_html_join(
            "", "<li>{}</li>",
            (
                (_("%(category)s, seed %(seed)s: nearest training photo of product #%(product)s (feature distance "
                   "%(fd)s, pixel difference %(pd)s%(agrees)s)") % {
                    "category": row["category"], "seed": row["seed"], "product": row["nearest_product"],
                    "fd": row["feature_distance"], "pd": row["pixel_distance"],
                    "agrees": _(", pixel check agrees") if row["pixel_agrees"] else "",
                },)
                for row in copies.get("samples", [])
            ),
        )
        return format_html(
            '{}<p>{}</p><img src="{}" alt="" style="max-width: 640px; image-rendering: pixelated"><ol>{}</ol>',
            summary, _("Each flagged sample (left) beside its nearest training photo (right), in this order:"),
            obj.near_copy_sheet.url, captions,
        )

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
