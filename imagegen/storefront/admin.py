"""Admin page of the A/B results: per product and segment, each arm's impressions, click-through and
conversion with 95% intervals, the bandit's allocation now, and the daily click-through."""
from django.contrib import admin
from django.template.response import TemplateResponse

from ..admin.readonly import ReadOnlyModelAdmin
from ..admin.widgets import ctr_plot
from . import services
from .models import ArmStats


def _rate(value, interval) -> str:
    return "—" if value is None else f"{value:.2%} ({interval[0]:.2%} – {interval[1]:.2%})"


@admin.register(ArmStats)
class ArmStatsAdmin(ReadOnlyModelAdmin):
    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        def number(name):
            value = request.GET.get(name, "")
            return int(value) if value.lstrip("-").isdigit() and len(value) < 19 else None

        groups = services.ab_report(product_id=number("product"), segment_index=number("segment"))
        for group in groups:
            group["plot"] = ctr_plot(group["arms"])
            for arm in group["arms"]:
                arm["ctr_text"] = _rate(arm["ctr"], arm["ctr_interval"])
                arm["conversion_text"] = _rate(arm["conversion"], arm["conversion_interval"])
                arm["allocation_text"] = f"{arm['allocation']:.0%}"
        context = {
            **self.admin_site.each_context(request),
            "title": "A/B results of personalized images",
            "opts": self.model._meta,
            "groups": groups,
            "exploration": services.bandit_exploration(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/imagegen_storefront/ab_report.html", context)
