"""Forms of the admin's confirmation pages; they validate input, the services do the rest. The photo
operations' forms are derived from their declarations (``admin/operation_forms.py``)."""
from django import forms
from django.core.validators import MaxValueValidator
from django.utils.translation import gettext_lazy

from .conf import settings
from .jobcore.seeds import SEED_MAX


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


def _photo_model_choices():
    from .services.photo_model_kinds import photo_models

    return [(kind, model.label) for kind, model in photo_models().items()]


class TrainModelForm(forms.Form):
    """Training one photo model (the "Train … model" action of an operation that needs one)."""

    steps = forms.IntegerField(min_value=1, required=False, help_text="Training steps (default from settings).")
    max_minutes = forms.FloatField(min_value=0.1, required=False, help_text="Stop after this many minutes.")
    seed = forms.IntegerField(min_value=0, max_value=SEED_MAX, required=False, initial=0)


class TrainPhotoModelForm(TrainModelForm):
    kind = forms.ChoiceField(choices=_photo_model_choices, label="Model")

    field_order = ["kind"]


class SceneSetFromProductsForm(forms.Form):
    """The name of a scene set made from the selected products' backdrops."""

    name = forms.CharField(max_length=100, label=gettext_lazy("Name of the scene set"),
                           help_text=gettext_lazy("E.g. “our studio floor”. The backdrops are made when its generator is trained."))
