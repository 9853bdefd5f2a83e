"""What a host adds to its product admin: the "Generate images" and "Train generator" actions, one action
per photo operation (and one that trains the model it needs), derived from the operations' declarations,
and the inline of generated images with approve/reject buttons."""
from functools import partial

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _, gettext_lazy

from .. import services
from ..conf import settings
from ..forms import GenerateImagesForm, TrainGeneratorForm, TrainModelForm, TrainPhotoModelForm
from ..services import operations
from ..services.operations import Operation
from .images import GeneratedImageInline
from ..forms import SceneSetFromProductsForm
from ..models import SceneSet
from ..services import scene_sets
from .operation_forms import OperationForm, form_for


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


def _edit_action(operation: Operation):
    """The admin action that runs ``operation`` on the selected products' photos (``_edit_photos``)."""

    def action(modeladmin, request, queryset):
        return modeladmin._edit_photos(request, queryset, operation=operation)

    action.__name__ = operation.admin_action
    action = admin.action(description=operation.admin_description)(action)
    action.imagegen_permissions = ("imagegen.edit_photos",)
    return action


def _train_action(operation: Operation):
    """The admin action that trains the model ``operation`` needs on the selected products."""

    def action(modeladmin, request, queryset):
        return modeladmin._train(
            request, queryset, start=partial(services.request_photo_model_training, kind=operation.model_kind),
            form_class=TrainModelForm, title=operation.train_title,
            action=operation.train_action,
        )

    action.__name__ = operation.train_action
    action = admin.action(description=operation.train_description)(action)
    action.imagegen_permissions = ("imagegen.train_generator",)
    return action


def operation_actions() -> list:
    """(function, name, description) of every registered operation's actions: its own, then the one that
    trains its model if it needs one."""
    actions = []
    for operation in operations.all_operations():
        for action in (_edit_action(operation), _train_action(operation) if operation.model_kind else None):
            if action is not None:
                actions.append((action, action.__name__, action.short_description))
    return actions


def _jobs_link(label: str):
    return format_html('<a href="{}">{}</a>', reverse("admin:imagegen_job_changelist"), label)


class ImagegenProductAdminMixin:
    """Mix into the host's product ModelAdmin: ``class ProductAdmin(ImagegenProductAdminMixin, admin.ModelAdmin)``."""

    # Followed by the photo operations' actions (operation_actions).
    imagegen_actions = ["generate_images", "train_generator", "train_photo_model", "make_scene_set"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        for func, action_name, description in [*map(self.get_action, self.imagegen_actions), *operation_actions()]:
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

    def _edit_in_bulk(self, request, queryset, operation: Operation, options: dict):
        try:
            bulk_operation = services.bulk.request_bulk_edit(queryset, operation.name, options=options, user=request.user)
        except (ValidationError, services.TooManyActiveJobs) as exc:
            self.message_user(request, _refusal(exc), messages.ERROR)
            return None
        self._bulk_started(request, bulk_operation, operation.admin_title)
        return None

    def _bulk_started(self, request, bulk_operation, what) -> None:
        link = format_html(
            '<a href="{}" class="imagegen-bulk-link">{}</a>',
            reverse("admin:imagegen_bulkoperation_change", args=[bulk_operation.pk]), _("Follow its progress."),
        )
        self.message_user(request, format_html(
            "{} {}", _("Started bulk operation #%(id)d: %(what)s for %(count)d products.") % {
                "id": bulk_operation.pk, "what": str(what).lower(), "count": bulk_operation.total}, link,
        ), messages.SUCCESS)

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

    @admin.action(description=gettext_lazy("Make a scene set from the selected products' backdrops"))
    def make_scene_set(self, request, queryset):
        """A scene set whose backdrops are the selected products' photos with the product removed (made when
        its scene generator is trained)."""
        form = SceneSetFromProductsForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _confirmation(self, request, queryset, form, title=_("Make a scene set from their backdrops"),
                                 action="make_scene_set", button=_("Make"))
        try:
            scene_set = scene_sets.create_scene_set(
                name=form.cleaned_data["name"], source=SceneSet.Source.BACKDROPS,
                product_ids=list(queryset.values_list("pk", flat=True)), user=request.user,
            )
        except ValidationError as exc:
            self.message_user(request, _refusal(exc), messages.ERROR)
            return None
        self.message_user(request, format_html(
            "{} <a href=\"{}\">{}</a>",
            _("Made the scene set “%(name)s” from %(count)d products' backdrops.") % {"name": scene_set.name, "count": queryset.count()},
            reverse("admin:imagegen_sceneset_change", args=[scene_set.pk]), _("Train its scene generator there."),
        ), messages.SUCCESS)
        return None

    make_scene_set.imagegen_permissions = ("imagegen.add_sceneset",)

    def _edit_photos(self, request, queryset, *, operation: Operation):
        """One edit job per selected product with a photo; products without one, or with nothing to do
        (``form.request_for``), are named, not queued. Over IMAGEGEN_BULK_THRESHOLD products with the same
        options for each, one bulk operation instead, expanded in the background."""
        form = form_for(operation)(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _confirmation(
                self, request, queryset, form, title=operation.admin_title, action=operation.admin_action,
                button=operation.admin_button, template=form.template, **form.page_context(queryset),
            )
        same_for_all = type(form).request_for is OperationForm.request_for
        if same_for_all and queryset.count() > settings.BULK_THRESHOLD:
            return self._edit_in_bulk(request, queryset, operation, form.cleaned_options)
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
                            services.request_edit(product, operation.name, options=options, mask=mask, user=request.user)
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
                request,
                format_html("Queued {} {} job(s). {}", len(jobs), str(operation.admin_title).lower(), _jobs_link("Follow them.")),
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(request, f"No photo to edit, skipped: {', '.join(skipped)}.", messages.WARNING)
        if unmarked:
            self.message_user(request, _("%(skipped)s: %(products)s.") % {
                "skipped": form.skipped_message, "products": ", ".join(unmarked),
            }, messages.WARNING)
        return None
