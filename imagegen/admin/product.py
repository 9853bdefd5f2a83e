"""What a host adds to its product admin: the "Generate images" and "Train generator" actions and the
inline of generated images with approve/reject buttons."""
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from .. import services
from ..conf import settings
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


def _confirmation(
    modeladmin, request, queryset, form, *, title: str, action: str, button: str,
    template: str = "admin/imagegen/confirm_action.html", **extra,
):
    context = {
        **extra,
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.model._meta,
        "queryset": queryset,
        # With Django's "select all N", the page carries that choice on instead of N hidden ids.
        "select_across": request.POST.get("select_across") == "1",
        "selected_count": queryset.count(),
        "form": form,
        "action": action,
        "button": button,
        "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, template, context)


def _refusal(exc: Exception) -> str:
    return "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)


def _edit_action(operation: str, form_class, *, name: str, title: str, button: str, description: str):
    """An admin action that runs ``operation`` on the selected products' photos (``_edit_photos``)."""

    def action(modeladmin, request, queryset):
        return modeladmin._edit_photos(
            request, queryset, operation=operation, form_class=form_class, title=title, action=name, button=button
        )

    action.__name__ = name
    action = admin.action(description=description)(action)
    action.imagegen_permissions = ("imagegen.edit_photos",)
    return action


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
        if form.is_valid() and queryset.count() > settings.BULK_THRESHOLD:
            return self._generate_in_bulk(request, queryset, form)
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

    def _generate_in_bulk(self, request, queryset, form):
        """Many products: one bulk operation, whose jobs are made in the background; answers at once."""
        try:
            operation = services.bulk.request_bulk_generation(
                queryset, count=form.cleaned_data["count"], seed=form.cleaned_data["seed"], user=request.user
            )
        except (ValidationError, services.TooManyActiveJobs) as exc:
            self.message_user(request, _refusal(exc), messages.ERROR)
            return None
        link = format_html(
            '<a href="{}" class="imagegen-bulk-link">Follow its progress.</a>',
            reverse("admin:imagegen_bulkoperation_change", args=[operation.pk]),
        )
        self.message_user(
            request,
            format_html("Started bulk operation #{}: generate images for {} products. {}", operation.pk, operation.total, link),
            messages.SUCCESS,
        )
        return None

    def _train(self, request, queryset, *, start, form_class, title: str, action: str):
        """Confirm, then queue one training job on the selection with ``start(queryset, user=, **form data)``."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _confirmation(self, request, queryset, form, title=title, action=action, button="Train")
        try:
            job = start(queryset, user=request.user, **form.cleaned_data)
        except (ValidationError, services.TooManyActiveJobs) as exc:
            self.message_user(request, _refusal(exc), messages.ERROR)
            return None
        self.message_user(
            request,
            format_html("Queued training job #{} on {} product(s). {}", job.pk, queryset.count(), _jobs_link("Follow it.")),
            messages.SUCCESS,
        )
        return None

    @admin.action(description="Train generator on selected products")
    def train_generator(self, request, queryset):
        return self._train(
            request, queryset, start=services.request_training, form_class=TrainGeneratorForm,
            title="Train a generator", action="train_generator",
        )

    train_generator.imagegen_permissions = ("imagegen.train_generator",)

    @admin.action(description="Train a photo model (enhance, repair, background, brand look) on selected products")
    def train_photo_model(self, request, queryset):
        return self._train(
            request, queryset, start=services.request_photo_model_training, form_class=TrainPhotoModelForm,
            title="Train a photo model", action="train_photo_model",
        )

    train_photo_model.imagegen_permissions = ("imagegen.train_generator",)

    def _edit_photos(self, request, queryset, *, operation: str, form_class, title: str, action: str, button: str):
        """One edit job per selected product with a photo; products without one, or with nothing to do
        (``form.request_for``), are named, not queued."""
        form = form_class(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _confirmation(
                self, request, queryset, form, title=title, action=action, button=button, template=form.template,
                **form.page_context(queryset),
            )
        jobs, skipped, unmarked = [], [], []
        try:
            # All or none of the products that have a photo: a refusal half-way leaves nothing queued.
            with transaction.atomic():
                for product in queryset:
                    wanted = form.request_for(product)
                    if wanted is None:
                        unmarked.append(str(product))
                        continue
                    options, mask = wanted
                    try:
                        jobs.append(
                            services.request_edit(product, operation, options=options, mask=mask, user=request.user)
                        )
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
        if unmarked:
            self.message_user(request, f"Nothing marked to repair, skipped: {', '.join(unmarked)}.", messages.WARNING)
        return None

    enhance_photos = _edit_action(
        "enhance", EnhancePhotosForm, name="enhance_photos", title="Enhance photos", button="Enhance",
        description="Enhance photos (denoise, sharpen, exposure, upscale)",
    )
    new_background = _edit_action(
        "background", BackgroundForm, name="new_background", title="New background", button="Make",
        description="Put photos on a new background (white, colour)",
    )
    brand_look = _edit_action(
        "brandlook", BrandLookForm, name="brand_look", title="Brand look", button="Apply",
        description="Give photos the brand look of reference products",
    )
    repair_photos = _edit_action(
        "repair", RepairForm, name="repair_photos", title="Repair photos", button="Repair",
        description="Repair marked regions of the photos (inpainting; paint or a rectangle)",
    )
