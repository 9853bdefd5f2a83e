"""What a host adds to its product admin: the "Generate images" and "Train generator" actions and the
inline of generated images with approve/reject buttons."""
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from .. import services
from ..forms import GenerateImagesForm, TrainGeneratorForm
from .images import GeneratedImageInline


def _confirmation(modeladmin, request, queryset, form, *, title: str, action: str, button: str):
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "queryset": queryset,
        "form": form,
        "action": action,
        "button": button,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/imagegen/confirm_action.html", context)


def _refusal(exc: Exception) -> str:
    return "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def _jobs_link(label: str):
    return format_html('<a href="{}">{}</a>', reverse("admin:imagegen_job_changelist"), label)


class ImagegenProductAdminMixin:
    """Mix into the host's product ModelAdmin: ``class ProductAdmin(ImagegenProductAdminMixin, admin.ModelAdmin)``."""

    imagegen_actions = ["generate_images", "train_generator"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        for name in self.imagegen_actions:
            func, action_name, description = self.get_action(name)
            if all(request.user.has_perm(p) for p in func.imagegen_permissions):
                actions[action_name] = (func, action_name, description)
        return actions

    def get_inlines(self, request, obj):
        inlines = list(super().get_inlines(request, obj))
        if obj is not None and request.user.has_perm("imagegen.view_generatedimage"):
            inlines.append(GeneratedImageInline)
        return inlines

    @admin.action(description="Generate images")
    def generate_images(self, request, queryset):
        form = GenerateImagesForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            jobs = []
            try:
                # All the selected products or none: a refusal half-way must not leave some jobs queued.
                with transaction.atomic():
                    for product in queryset:
                        jobs.append(
                            services.request_generation(
                                product, count=form.cleaned_data["count"], seed=form.cleaned_data["seed"], user=request.user
                            )
                        )
            except (ValidationError, services.TooManyActiveJobs) as exc:
                self.message_user(request, _refusal(exc), messages.ERROR)
                return None
            self.message_user(
                request,
                format_html("Queued {} generate job(s). {}", len(jobs), _jobs_link("Follow them on the jobs page.")),
                messages.SUCCESS,
            )
            return None
        return _confirmation(
            self, request, queryset, form, title="Generate images", action="generate_images", button="Generate"
        )

    generate_images.imagegen_permissions = ("imagegen.generate_images",)

    @admin.action(description="Train generator on selected products")
    def train_generator(self, request, queryset):
        form = TrainGeneratorForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                job = services.request_training(queryset, user=request.user, **form.cleaned_data)
            except (ValidationError, services.TooManyActiveJobs) as exc:
                self.message_user(request, _refusal(exc), messages.ERROR)
                return None
            self.message_user(
                request,
                format_html(
                    "Queued training job #{} on {} product(s). {}", job.pk, queryset.count(), _jobs_link("Follow it.")
                ),
                messages.SUCCESS,
            )
            return None
        return _confirmation(
            self, request, queryset, form, title="Train a generator", action="train_generator", button="Train"
        )

    train_generator.imagegen_permissions = ("imagegen.train_generator",)
