"""Forms of the admin's confirmation pages; they validate input, the services do the rest."""
import base64

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator

from .conf import settings
from .services.jobs import SEED_MAX


def _kind_choices():
    return [(kind, kind) for kind in settings.KINDS]


class GenerateImagesForm(forms.Form):
    count = forms.IntegerField(
        label="Images per product", min_value=1, initial=4, help_text="How many images to generate for each product."
    )
    seed = forms.IntegerField(
        min_value=0,
        max_value=SEED_MAX,
        required=False,
        help_text="Same seed, same images. Leave empty for a random one (it is recorded on every image).",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The limit is a setting, so it is applied per form rather than at import time.
        limit = settings.MAX_IMAGES_PER_JOB
        self.fields["count"].validators.append(MaxValueValidator(limit))
        self.fields["count"].widget.attrs["max"] = limit


class TrainGeneratorForm(forms.Form):
    kind = forms.ChoiceField(choices=_kind_choices)
    image_size = forms.TypedChoiceField(choices=[(64, "64 × 64"), (128, "128 × 128")], coerce=int, initial=64)
    steps = forms.IntegerField(min_value=1, required=False, help_text="Training steps (default from settings).")
    max_minutes = forms.FloatField(min_value=0.1, required=False, help_text="Stop after this many minutes.")
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, required=False, initial=0)


class PhotoEditForm(forms.Form):
    """The form of a photo operation: the same ``options()`` for every selected product."""

    template = "admin/imagegen/confirm_action.html"

    def page_context(self, queryset) -> dict:
        """What the confirmation page shows besides the form."""
        return {}

    def options(self) -> dict:
        raise NotImplementedError

    def request_for(self, product) -> tuple[dict, bytes | None] | None:
        """(options, mask) for ``product``'s job; None when there is nothing to do for it."""
        return self.options(), None


class EnhancePhotosForm(PhotoEditForm):
    upscale = forms.TypedChoiceField(
        choices=[(1, "Same size"), (2, "2 × larger"), (4, "4 × larger")], coerce=int, initial=1,
        help_text="Denoise, deblur, JPEG clean-up, exposure and colour are corrected in every case.",
    )

    def options(self) -> dict:
        return {"upscale": self.cleaned_data["upscale"]}


class BackgroundForm(PhotoEditForm):
    background = forms.ChoiceField(
        choices=[("white", "Pure white (#FFFFFF)"), ("colour", "A brand colour"), ("transparent", "Transparent")],
        initial="white",
    )
    colour = forms.RegexField(
        regex=r"^#[0-9a-fA-F]{6}$", required=False, initial="#FFFFFF", help_text="#RRGGBB, for a brand colour."
    )
    fill = forms.FloatField(
        min_value=0.3, max_value=1.0, initial=0.85, help_text="Share of the frame's longer side the product fills."
    )
    shadow = forms.BooleanField(required=False, help_text="A soft shadow under the product (no longer pure white there).")
    size = forms.IntegerField(min_value=64, max_value=4096, required=False, help_text="Square side in pixels (default: the photo's).")
    backdrop = forms.ChoiceField(
        choices=[("plain", "Plain (one flat colour)"), ("studio", "Generated studio backdrop (a sweep in that colour)")],
        initial="plain", required=False,
        help_text="The studio backdrop is the same for every product; white gives a light grey sweep.",
    )

    def clean(self):
        data = super().clean()
        if data.get("background") == "colour" and not data.get("colour"):
            self.add_error("colour", "Give the brand colour as #RRGGBB.")
        if data.get("background") == "transparent" and data.get("backdrop") == "studio":
            self.add_error("backdrop", "A studio backdrop needs white or a brand colour.")
        return data

    def options(self) -> dict:
        data = self.cleaned_data
        background = data["colour"] if data["background"] == "colour" else data["background"]
        return {
            "background": background, "fill": data["fill"], "shadow": data["shadow"], "size": data.get("size"),
            "backdrop": data.get("backdrop") or "plain",
        }


def _photo_model_choices():
    from .services.photo_models import PHOTO_MODELS

    return [(kind, model.label) for kind, model in PHOTO_MODELS.items()]


class TrainPhotoModelForm(forms.Form):
    kind = forms.ChoiceField(choices=_photo_model_choices, label="Model")
    steps = forms.IntegerField(min_value=1, required=False, help_text="Training steps (default from settings).")
    max_minutes = forms.FloatField(min_value=0.1, required=False, help_text="Stop after this many minutes.")
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, required=False, initial=0)


class BrandLookForm(PhotoEditForm):
    references = forms.CharField(
        label="Reference products",
        help_text="Ids of 1 to 12 products whose photos show the look, separated by commas.",
    )

    def clean_references(self) -> list[int]:
        parts = [part.strip() for part in self.cleaned_data["references"].split(",") if part.strip()]
        if not parts or not all(part.isdigit() for part in parts):
            raise forms.ValidationError("Give product ids separated by commas, e.g. 12, 40, 41.")
        return [int(part) for part in parts]

    def options(self) -> dict:
        return {"references": self.cleaned_data["references"]}


class RepairForm(PhotoEditForm):
    """A rectangle for every selected product, and/or a mask painted with the brush on each photo (the page's
    canvases post them as PNG data URLs named ``mask_<product id>``)."""

    left = forms.FloatField(
        min_value=0, max_value=1, required=False,
        help_text="Optional rectangle for every selected product, as shares of the photo (0 to 1). Leave the four "
        "empty to repair only what you paint below.",
    )
    top = forms.FloatField(min_value=0, max_value=1, required=False)
    right = forms.FloatField(min_value=0, max_value=1, required=False)
    bottom = forms.FloatField(min_value=0, max_value=1, required=False)
    detect_specks = forms.BooleanField(
        required=False, label="Find specks automatically",
        help_text="Also repair dust and specks found on a plain backdrop (never on the product). Photos where "
        "this is not reliable fail with the reason.",
    )

    MASK_PREFIX = "data:image/png;base64,"
    template = "admin/imagegen/repair_photos.html"
    # Painting is one photo at a time: beyond this many selected products the page offers the rectangle only.
    PAINTABLE_PHOTOS = 20

    def page_context(self, queryset) -> dict:
        """(product, URL of its photo) to paint a mask on, for the first PAINTABLE_PHOTOS products with one."""
        from .services import primary_photo_url

        pairs = ((product, primary_photo_url(product)) for product in queryset[: self.PAINTABLE_PHOTOS])
        return {"photos": [(product, url) for product, url in pairs if url]}

    def clean(self):
        data = super().clean()
        given = [data.get(name) is not None for name in ("left", "top", "right", "bottom")]
        if any(given) and not all(given):
            raise forms.ValidationError("Give all four sides of the rectangle, or none.")
        if all(given):
            if data["left"] >= data["right"]:
                self.add_error("right", "Right must be beyond left.")
            if data["top"] >= data["bottom"]:
                self.add_error("bottom", "Bottom must be below top.")
        return data

    def options(self) -> dict:
        data = self.cleaned_data
        options = {"detect": "backdrop_specks"} if data.get("detect_specks") else {}
        if data.get("left") is not None:
            options["regions"] = [[data["left"], data["top"], data["right"], data["bottom"]]]
        return options

    def painted_mask(self, product) -> bytes | None:
        """The PNG painted on ``product``'s photo, None when nothing was painted on it."""
        value = self.data.get(f"mask_{product.pk}", "")
        if not value:
            return None
        if not value.startswith(self.MASK_PREFIX):
            raise ValidationError({"mask": f"The mask painted on {product} did not arrive as a PNG."})
        try:
            return base64.b64decode(value[len(self.MASK_PREFIX) :], validate=True)
        except ValueError as exc:
            raise ValidationError({"mask": f"The mask painted on {product} is damaged."}) from exc

    def request_for(self, product) -> tuple[dict, bytes | None] | None:
        mask, options = self.painted_mask(product), self.options()
        if mask is None and not options:
            return None
        return options, mask
