"""Admin pages of bulk operations: list and detail with progress, counts, summary and a Cancel button."""
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from .. import services
from ..models import BulkOperation
from ..services import bulk_report
from .readonly import ReadOnlyModelAdmin
from .widgets import progress_bar, state_badge


@admin.register(BulkOperation)
class BulkOperationAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "operation", "status", "progress_", "total", "requested_by", "created_at", "finished_at")
    list_filter = ("state", "operation")
    list_select_related = ("requested_by",)
    # The selection itself (up to every product of the shop) is not shown; its size is.
    fields = ("operation", "state", "parameters", "total", "expanded", "skipped", "requested_by", "error",
              "created_at", "started_at", "expanded_at", "finished_at")
    change_form_template = "admin/imagegen/bulkoperation/change_form.html"
    change_list_template = "admin/imagegen/job/change_list.html"
    refresh_seconds = 5

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_delete_permission(self, request, obj=None):
        # Deleting an unfinished operation would leave its jobs running with nothing to follow or cancel them by.
        if obj is not None and not obj.is_finished:
            return False
        return super().has_delete_permission(request, obj)

    def get_urls(self):
        cancel = path(
            "<int:pk>/cancel/", self.admin_site.admin_view(require_POST(self.cancel_view)),
            name="imagegen_bulkoperation_cancel",
        )
        return [cancel, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        active = BulkOperation.objects.filter(state__in=BulkOperation.ACTIVE_STATES).exists()
        context = {"imagegen_jobs_active": active, "imagegen_refresh_seconds": self.refresh_seconds}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    def change_view(self, request, object_id, form_url="", extra_context=None):
        operation = get_object_or_404(BulkOperation, pk=object_id)
        context = {
            "imagegen_report": bulk_report.report(operation),
            "imagegen_operation": operation,
            "imagegen_may_cancel": not operation.is_finished and services.bulk.may_cancel(request.user, operation),
            "imagegen_refresh_seconds": self.refresh_seconds,
            "imagegen_jobs_url": reverse("admin:imagegen_job_changelist") + f"?bulk__id__exact={operation.pk}",
        }
        return super().change_view(request, object_id, form_url, {**context, **(extra_context or {})})

    def cancel_view(self, request, pk: int):
        operation = get_object_or_404(BulkOperation, pk=pk)
        if not services.bulk.may_cancel(request.user, operation):
            raise PermissionDenied
        if services.bulk.cancel(operation):
            self.message_user(request, f"Cancelled bulk operation #{operation.pk}.", messages.SUCCESS)
        else:
            self.message_user(request, f"Bulk operation #{operation.pk} had already finished.", messages.WARNING)
        return redirect("admin:imagegen_bulkoperation_change", operation.pk)

    @admin.display(description="State", ordering="state")
    def status(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    @admin.display(description="Progress")
    def progress_(self, obj):
        return progress_bar(bulk_report.progress(obj, bulk_report.counts(obj)))
