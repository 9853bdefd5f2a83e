"""Admin page of the A/B results: per product and segment, each arm's impressions, click-through and
conversion with 95% intervals, the bandit's allocation now, and the daily click-through."""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse
from django.utils.translation import gettext, gettext_lazy as _, ngettext

from ..admin.readonly import ReadOnlyModelAdmin
from ..admin.widgets import ctr_plot
from . import services
from ..admin.product import _confirmation, _refusal
from ..models import SceneSet
from .models import ArmStats, Segment


class SceneVariantsForm(forms.Form):
    scene_set = forms.ModelChoiceField(queryset=SceneSet.objects.all(), label=_("Scene set"))
    variants = forms.IntegerField(min_value=1, initial=1, label=_("Scenes per product"))
    seed = forms.IntegerField(min_value=0, initial=0)


@admin.register(Segment)
class SegmentAdmin(ReadOnlyModelAdmin):
    """The shopper segments, and making scene variants for them (compared with the original photo by the A/B test)."""

    list_display = ["index", "shoppers", "refreshed_at"]
    actions = ["make_scene_variants"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not request.user.has_perm("imagegen.edit_photos"):
            actions.pop("make_scene_variants", None)
        return actions

    @admin.action(description=_("Make scene variants of every product for the selected segments"))
    def make_scene_variants(self, request, queryset):
        form = SceneVariantsForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _confirmation(self, request, queryset, form, title=gettext("Make scene variants"),
                                 action="make_scene_variants", button=gettext("Make"))
        try:
            jobs = services.request_scene_variants(form.cleaned_data["scene_set"], segments=queryset, user=request.user,
                                                   variants=form.cleaned_data["variants"], seed=form.cleaned_data["seed"])
        except ValidationError as exc:
            self.message_user(request, _refusal(exc), messages.ERROR)
            return None
        self.message_user(request, ngettext("Queued %(count)d scene variant job.", "Queued %(count)d scene variant jobs.",
                                            len(jobs)) % {"count": len(jobs)}, messages.SUCCESS)
        return None


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
