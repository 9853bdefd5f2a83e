"""Admin of uploaded source photos: adding one goes through the same checks and normalisation as the API
(``services.uploads``); a stored photo is never edited, only viewed or deleted."""
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError

from .. import services
from ..models import SourcePhoto
from ..services import uploads
from .widgets import thumbnail


class SourcePhotoAddForm(forms.ModelForm):
    """Product and file; ``clean_image`` decodes and normalises the file, so a refusal shows on the form."""

    # Not forms.ImageField: that hands the upload to every Pillow decoder to "verify" it. Empty files get
    # the same message as in the API.
    image = forms.FileField(
        label="Photo",
        allow_empty_file=True,
        help_text="JPEG, PNG, WebP or a still GIF. It is stored re-encoded as PNG, upright and without metadata.",
    )

    class Meta:
        model = SourcePhoto
        # The model's image field is filled by services.save_source_photo with our PNG, never with the upload.
        fields = ["product"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["image"].widget.attrs["accept"] = ",".join(uploads.accepted_content_types())
        self.normalised: uploads.NormalisedImage | None = None

    def clean_image(self):
        upload = self.cleaned_data["image"]
        try:
            self.normalised = uploads.normalise_upload(upload)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict.get(uploads.FIELD, exc.messages)) from exc
        return upload


@admin.register(SourcePhoto)
class SourcePhotoAdmin(admin.ModelAdmin):
    list_display = ("id", "preview", "product", "original_name", "size_", "source_format", "uploaded_by", "created_at")
    list_filter = ("source_format",)
    list_select_related = ("product", "uploaded_by")
    search_fields = ("original_name",)
    raw_id_fields = ("product",)
    add_fields = ["product", "image"]
    view_fields = ["preview_large", "product", "original_name", "size_", "source_format", "uploaded_by", "created_at"]

    def has_change_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        return list(self.add_fields if obj is None else self.view_fields)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else list(self.view_fields)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs.update(form=SourcePhotoAddForm, fields=["product"])
        return super().get_form(request, obj, change=change, **kwargs)

    def save_model(self, request, obj, form, change):
        services.save_source_photo(obj, form.normalised, user=request.user)
        request._imagegen_stored_photos = [*getattr(request, "_imagegen_stored_photos", []), obj]

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except BaseException:
            # save_model's file was written inside the admin's own transaction, which this rolled back.
            for photo in getattr(request, "_imagegen_stored_photos", []):
                photo.image.storage.delete(photo.image.name)
            raise

    @admin.display(description="Photo")
    def preview(self, obj):
        return thumbnail(obj.image, 64, alt=f"photo {obj.pk}")

    @admin.display(description="Photo")
    def preview_large(self, obj):
        return thumbnail(obj.image, 480, alt=f"photo {obj.pk}")

    @admin.display(description="Size")
    def size_(self, obj):
        return f"{obj.width}×{obj.height}"
