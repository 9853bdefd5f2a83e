"""What a host adds to its product admin: the "Generate images" and "Train generator" actions and the
inline of generated images with approve/reject buttons."""
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from .. import services
from ..forms import (
    BackgroundForm,
    BrandLookForm,
    EnhancePhotosForm,
    GenerateImagesForm,
    RepairForm,
    TrainGeneratorForm,
    TrainPhotoModelForm,
)
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

    imagegen_actions = [
        "generate_images", "train_generator", "train_photo_model", "enhance_photos", "repair_photos", "new_background", "brand_look",
    ]

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

    @admin.action(description="Train a photo model (enhance, background) on selected products")
    def train_photo_model(self, request, queryset):
        form = TrainPhotoModelForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _confirmation(
                self, request, queryset, form, title="Train a photo model", action="train_photo_model", button="Train"
            )
        try:
            job = services.request_photo_model_training(queryset, user=request.user, **form.cleaned_data)
        except (ValidationError, services.TooManyActiveJobs) as exc:
            self.message_user(request, _refusal(exc), messages.ERROR)
            return None
        self.message_user(
            request,
            format_html("Queued training job #{} on {} product(s). {}", job.pk, queryset.count(), _jobs_link("Follow it.")),
            messages.SUCCESS,
        )
        return None

    train_photo_model.imagegen_permissions = ("imagegen.train_generator",)

    def _edit_photos(self, request, queryset, *, operation: str, form_class, title: str, action: str, button: str):
        """One edit job per selected product with a photo; products without one are named, not queued."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _confirmation(self, request, queryset, form, title=title, action=action, button=button)
        jobs, skipped = [], []
        try:
            # All or none of the products that have a photo: a refusal half-way leaves nothing queued.
            with transaction.atomic():
                for product in queryset:
                    try:
                        jobs.append(services.request_edit(product, operation, options=form.options(), user=request.user))
                    except ValidationError as exc:
                        if "source_photo" not in getattr(exc, "error_dict", {}):
                            raise
                        skipped.append(str(product))
        except (ValidationError, services.TooManyActiveJobs) as exc:
            self.message_user(request, _refusal(exc), messages.ERROR)
            return None
        if jobs:
            self.message_user(
                request, format_html("Queued {} {} job(s). {}", len(jobs), title.lower(), _jobs_link("Follow them.")), messages.SUCCESS
            )
        if skipped:
            self.message_user(request, f"No photo to edit, skipped: {', '.join(skipped)}.", messages.WARNING)
        return None

    @admin.action(description="Enhance photos (denoise, sharpen, exposure, upscale)")
    def enhance_photos(self, request, queryset):
        return self._edit_photos(
            request, queryset, operation="enhance", form_class=EnhancePhotosForm, title="Enhance photos",
            action="enhance_photos", button="Enhance",
        )

    enhance_photos.imagegen_permissions = ("imagegen.edit_photos",)

    @admin.action(description="Put photos on a new background (white, colour)")
    def new_background(self, request, queryset):
        return self._edit_photos(
            request, queryset, operation="background", form_class=BackgroundForm, title="New background",
            action="new_background", button="Make",
        )

    new_background.imagegen_permissions = ("imagegen.edit_photos",)

    @admin.action(description="Give photos the brand look of reference products")
    def brand_look(self, request, queryset):
        return self._edit_photos(
            request, queryset, operation="brandlook", form_class=BrandLookForm, title="Brand look",
            action="brand_look", button="Apply",
        )

    brand_look.imagegen_permissions = ("imagegen.edit_photos",)

    @admin.action(description="Repair a region of the photos (inpainting)")
    def repair_photos(self, request, queryset):
        return self._edit_photos(
            request, queryset, operation="repair", form_class=RepairForm, title="Repair photos",
            action="repair_photos", button="Repair",
        )

    repair_photos.imagegen_permissions = ("imagegen.edit_photos",)
