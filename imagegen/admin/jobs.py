"""Admin page of jobs: state, progress, errors, and cancelling."""
from django.contrib import admin, messages

from .. import services
from ..models import Job
from .readonly import ReadOnlyModelAdmin
from .widgets import progress_bar, state_badge


@admin.register(Job)
class JobAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "kind", "status", "progress_", "message", "product", "model_version", "requested_by", "attempts", "created_at", "finished_at")
    list_filter = ("state", "kind")
    list_select_related = ("product", "model_version", "requested_by")
    actions = ["cancel_jobs"]

    def has_cancel_permission(self, request):
        return request.user.has_perm("imagegen.change_job")

    # While jobs are queued or running, the list reloads itself so progress moves without a click.
    refresh_seconds = 5

    def changelist_view(self, request, extra_context=None):
        active = Job.objects.filter(state__in=[Job.State.QUEUED, Job.State.RUNNING]).exists()
        context = {"imagegen_jobs_active": active, "imagegen_refresh_seconds": self.refresh_seconds}
        return super().changelist_view(request, {**context, **(extra_context or {})})

    @admin.display(description="State", ordering="state")
    def status(self, obj):
        return state_badge(obj.state, obj.get_state_display())

    @admin.display(description="Progress", ordering="progress")
    def progress_(self, obj):
        return progress_bar(obj.progress)

    @admin.action(description="Cancel selected jobs", permissions=["cancel"])
    def cancel_jobs(self, request, queryset):
        cancelled = sum(services.cancel(job) for job in queryset)
        self.message_user(request, f"Cancelled {cancelled} job(s).", messages.SUCCESS)
