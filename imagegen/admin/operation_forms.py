"""The confirmation forms of the photo operations' admin actions, derived from their declarations.

A form's fields are made from the operation's options serializer (``OperationForm``), and what the form
gathers is validated by that serializer (``Operation.clean``): the rules of an option live in one place. An
operation whose options read better another way on a page names its own subclass in ``admin_form``
(``BackgroundForm``, ``RepairForm``); such a form maps its fields to the options, and still validates there.
"""
import base64

from django import forms
from django.db import models
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.utils.module_loading import import_string
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from rest_framework import fields as drf
from rest_framework.fields import empty

from ..services.operations import Operation


def _number_widget(field: drf.Field) -> forms.NumberInput:
    # The limits as hints for the browser; the serializer enforces them.
    attrs = {name: value for name, value in (("min", field.min_value), ("max", field.max_value)) if value is not None}
    return forms.NumberInput(attrs=attrs)


def form_field(field: drf.Field) -> forms.Field | None:
    """The form field for a serializer field, or None for one a page cannot show (files, nested lists)."""
    common = {"required": field.required, "label": field.label, "help_text": field.help_text or ""}
    if field.default is not empty and not callable(field.default) and field.default is not None:
        common["initial"] = field.default
    if isinstance(field, drf.BooleanField):
        return forms.BooleanField(**{**common, "required": False})
    if isinstance(field, drf.MultipleChoiceField):
        choices = [(str(value), str(label)) for value, label in field.choices.items()]
        return forms.MultipleChoiceField(choices=choices, widget=forms.CheckboxSelectMultiple, **common)
    if isinstance(field, drf.ChoiceField) and not isinstance(field, (drf.MultipleChoiceField, drf.FileField)):
        choices = [(str(value), str(label)) for value, label in field.choices.items()]
        if not field.required and "initial" not in common:
            choices.insert(0, ("", "---------"))
        return forms.ChoiceField(choices=choices, **common)
    if isinstance(field, drf.IntegerField):
        return forms.IntegerField(widget=_number_widget(field), **common)
    if isinstance(field, drf.FloatField):
        return forms.FloatField(widget=_number_widget(field), **common)
    if isinstance(field, drf.ListField) and not isinstance(field.child, (drf.ListField, drf.DictField, drf.FileField)):
        common["help_text"] = (gettext("%(help)s Separate them with commas.") % {"help": common["help_text"]}).strip()
        return forms.CharField(**common)
    if isinstance(field, drf.CharField):
        return forms.CharField(**common)
    return None


class OperationForm(forms.Form):
    """The form of an operation's action: fields derived from its serializer, options validated by it; the
    same options for every selected product. Made per operation by ``form_for``."""

    operation: Operation
    template = "admin/imagegen/confirm_action.html"
    # Options the page does not show (a subclass declares fields that stand for them).
    exclude: tuple[str, ...] = ()
    # The message naming the selected products ``request_for`` gave nothing to do.
    skipped_message = _("Nothing to do, skipped")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        declared, self.fields = self.fields, {}
        serializer_fields = self.operation.serializer_class().fields
        self.option_fields = [name for name, f in serializer_fields.items() if not f.read_only and name not in self.exclude]
        # Derived list options are typed as comma-separated text.
        self.list_options = set()
        for name in self.option_fields:
            field = declared.pop(name, None)
            if field is None:
                field = form_field(serializer_fields[name])
                if field is None:
                    raise ImproperlyConfigured(
                        f"The option {name!r} of {self.operation.name} has no form field: name a form in its admin_form."
                    )
                if isinstance(serializer_fields[name], drf.ListField):
                    self.list_options.add(name)
            self.fields[name] = field
        self.fields.update(declared)
        self.order_fields(self.field_order)

    def page_context(self, queryset) -> dict:
        """What the confirmation page shows besides the form."""
        return {}

    def options(self) -> dict:
        """The options the form's fields give (empty ones left to the serializer's defaults)."""
        options = {}
        for name in self.option_fields:
            value = self.cleaned_data.get(name)
            if name in self.list_options:
                value = [part.strip() for part in (value or "").split(",") if part.strip()] or None
            if value is None or value == "" or value == []:
                continue
            options[name] = value
        return options

    def clean(self):
        data = super().clean()
        if not self._errors:
            self.validate_options()
        return data

    def validate_options(self) -> None:
        try:
            self.cleaned_options = self.operation.clean(self.options())
        except ValidationError as exc:
            for name, errors in exc.message_dict.items():
                self.add_error(self.error_field(name), errors)

    def error_field(self, option: str) -> str | None:
        """The form field that shows the serializer's errors of ``option`` (None: above the form)."""
        return option if option in self.fields else None

    def request_for(self, product) -> tuple[dict, bytes | None] | None:
        """(options, mask) for ``product``'s job; None when there is nothing to do for it."""
        return self.cleaned_options, None


def form_for(operation: Operation) -> type[OperationForm]:
    """The form class of ``operation``'s admin action."""
    base = import_string(operation.admin_form) if operation.admin_form else OperationForm
    return type(f"{type(operation).__name__}Form", (base,), {"operation": operation})


class BackgroundForm(OperationForm):
    """The background as a choice of white, a brand colour (given under ``colour``) or transparency."""

    background = forms.ChoiceField(
        choices=[("white", "Pure white (#FFFFFF)"), ("colour", "A brand colour"), ("transparent", "Transparent")],
        initial="white",
    )
    colour = forms.CharField(required=False, initial="#FFFFFF", help_text="#RRGGBB, for a brand colour.")

    field_order = ["background", "colour"]

    def clean(self):
        if self.cleaned_data.get("background") == "colour" and not self.cleaned_data.get("colour"):
            self.add_error("colour", "Give the brand colour as #RRGGBB.")
        return super().clean()

    def options(self) -> dict:
        options = super().options()
        if options.get("background") == "colour":
            options["background"] = self.cleaned_data["colour"]
        return options

    def error_field(self, option: str) -> str | None:
        if option == "background" and self.cleaned_data.get("background") == "colour":
            return "colour"
        return super().error_field(option)


def _share(label: str | None = None, **kwargs) -> forms.FloatField:
    return forms.FloatField(
        required=False, label=label, widget=forms.NumberInput(attrs={"min": 0, "max": 1, "step": "any"}), **kwargs
    )


class RepairForm(OperationForm):
    """A rectangle for every selected product, and/or a mask painted with the brush on each photo (the page's
    canvases post them as PNG data URLs named ``mask_<product id>``)."""

    exclude = ("regions", "detect", "mask")
    left = _share(
        help_text="Optional rectangle for every selected product, as shares of the photo (0 to 1). Leave the four "
        "empty to repair only what you paint below.",
    )
    top = _share()
    right = _share()
    bottom = _share()
    detect_specks = forms.BooleanField(
        required=False, label="Find specks automatically",
        help_text="Also repair dust and specks found on a plain backdrop (never on the product). Photos where "
        "this is not reliable fail with the reason.",
    )

    MASK_PREFIX = "data:image/png;base64,"
    template = "admin/imagegen/repair_photos.html"
    skipped_message = _("Nothing marked to repair, skipped")
    # Painting is one photo at a time: beyond this many selected products the page offers the rectangle only.
    PAINTABLE_PHOTOS = 20

    def page_context(self, queryset) -> dict:
        """(product, URL of its photo) to paint a mask on, for the first PAINTABLE_PHOTOS products with one."""
        from ..services import primary_photo_url

        pairs = ((product, primary_photo_url(product)) for product in queryset[: self.PAINTABLE_PHOTOS])
        return {"photos": [(product, url) for product, url in pairs if url]}

    def clean(self):
        given = [self.cleaned_data.get(name) is not None for name in ("left", "top", "right", "bottom")]
        if any(given) and not all(given):
            raise forms.ValidationError("Give all four sides of the rectangle, or none.")
        return super().clean()

    def options(self) -> dict:
        data = self.cleaned_data
        options = {"detect": "backdrop_specks"} if data.get("detect_specks") else {}
        if data.get("left") is not None:
            options["regions"] = [[data["left"], data["top"], data["right"], data["bottom"]]]
        return options

    def validate_options(self) -> None:
        if self.options():
            super().validate_options()
        else:
            # Nothing for every product: each one needs its own painted mask (``request_for``).
            self.cleaned_options = {}

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
        mask, options = self.painted_mask(product), self.cleaned_options
        if mask is None and not options:
            return None
        return options, mask


class SceneForm(OperationForm):
    """The scene set and preset as choices of what exists, the rest derived from the options."""

    scene_set = forms.ModelChoiceField(
        queryset=None, label=_("Scene set"),
        help_text=_("Where the products go. A set learned from photos needs its trained scene generator."),
    )
    preset = forms.ChoiceField(required=False, label=_("Preset"))

    field_order = ["scene_set", "preset", "aspect", "variants", "seed"]

    def __init__(self, *args, **kwargs):
        from ..conf import settings
        from ..models import SceneSet

        super().__init__(*args, **kwargs)
        self.fields["scene_set"].queryset = SceneSet.objects.all()
        self.fields["preset"].choices = [("", _("None: the options below"))] + [
            (name, preset.get("label", name)) for name, preset in settings.SCENE_PRESETS.items()
        ]

    def options(self) -> dict:
        options = super().options()
        if isinstance(options.get("scene_set"), models.Model):
            options["scene_set"] = options["scene_set"].pk
        return options
