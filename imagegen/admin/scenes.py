"""Admin of scene sets: their backdrops (uploaded scene photos, or the product photos' backdrops the training
job makes), uploading more, and training a set's scene generator. Products are put in a scene from the
product admin ("Put in a scene")."""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext, gettext_lazy as _, ngettext

from ..forms import TrainModelForm
from ..models import ScenePhoto, SceneSet
from ..services import scene_sets, uploads
from .. import services
from .product import _confirmation, _refusal
from .widgets import thumbnail


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented pattern): a list, each file checked as FileField does."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, (list, tuple)):
            return [super(MultipleFileField, self).clean(item, initial) for item in data]
        return [super().clean(data, initial)] if data else []


class SceneSetForm(forms.ModelForm):
    """The set's fields, and scene photos to add (an uploaded set), each checked under the upload rules."""

    photos = MultipleFileField(
        required=False, label=_("Add scene photos"), allow_empty_file=True,
        help_text=_("Empty tables, walls, shelves, rooms or fabrics (JPEG, PNG, WebP). Each is stored re-encoded "
                    "as PNG, upright and without metadata."),
    )

    class Meta:
        model = SceneSet
        fields = ["name", "source", "colour", "product_ids"]

    def clean_colour(self):
        try:
            return scene_sets.check_colour(self.cleaned_data["colour"])
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["colour"]) from exc

    def clean_photos(self):
        uploads_sent = self.cleaned_data.get("photos") or []
        if uploads_sent and self.cleaned_data.get("source", self.instance.source) != SceneSet.Source.UPLOADED:
            raise ValidationError(gettext("Only a set of uploaded scene photos takes uploads."))
        self.normalised = []
        for upload in uploads_sent:
            try:
                self.normalised.append(uploads.normalise_upload(upload))
            except ValidationError as exc:
                raise ValidationError(gettext("%(name)s: %(reason)s") % {
                    "name": upload.name, "reason": " ".join(exc.message_dict.get(uploads.FIELD, exc.messages))}) from exc
        return None


class ScenePhotoInline(admin.TabularInline):
    model = ScenePhoto
    extra = 0
    fields = ["preview", "origin", "product_id", "width", "height", "original_name", "created_at"]
    readonly_fields = fields
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("Photo"))
    def preview(self, obj):
        return thumbnail(obj.image, 96, alt=f"scene photo {obj.pk}")


@admin.register(SceneSet)
class SceneSetAdmin(admin.ModelAdmin):
    form = SceneSetForm
    list_display = ["name", "source", "photo_count", "generator", "created_at"]
    list_filter = ["source"]
    search_fields = ["name"]
    inlines = [ScenePhotoInline]
    actions = ["train_scene_generator"]

    @admin.display(description=_("Backdrops"))
    def photo_count(self, obj):
        return obj.photos.count()

    @admin.display(description=_("Scene generator"))
    def generator(self, obj):
        if obj.source == SceneSet.Source.STUDIO:
            return gettext("drawn (needs none)")
        version = scene_sets.active_generator(obj)
        if version is None:
            return gettext("not trained")
        return format_html('<a href="{}">{}</a>', reverse("admin:imagegen_modelversion_change", args=[version.pk]), version)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        for image in getattr(form, "normalised", []):
            scene_sets.save_scene_photo(form.instance, image, user=request.user)
        if getattr(form, "normalised", None):
            self.message_user(request, ngettext("Added %(count)d scene photo.", "Added %(count)d scene photos.",
                                                len(form.normalised)) % {"count": len(form.normalised)}, messages.SUCCESS)

    @admin.action(description=_("Train the scene generator of the selected sets"))
    def train_scene_generator(self, request, queryset):
        form = TrainModelForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return _confirmation(self, request, queryset, form, title=gettext("Train the scene generator"),
                                 action="train_scene_generator", button=gettext("Train"))
        queued = []
        for scene_set in queryset:
            try:
                options = {k: v for k, v in form.cleaned_data.items() if v is not None}
                queued.append(scene_sets.request_scene_training(scene_set, user=request.user, **options))
            except (ValidationError, services.TooManyActiveJobs) as exc:
                # Each set's refusal is reported; the others still queue.
                self.message_user(request, _refusal(exc), messages.ERROR)
        if queued:
            self.message_user(request, format_html(
                "{} <a href=\"{}\">{}</a>",
                ngettext("Queued %(count)d training job.", "Queued %(count)d training jobs.", len(queued)) % {"count": len(queued)},
                reverse("admin:imagegen_job_changelist"), gettext("Follow them."),
            ), messages.SUCCESS)
        return None
