"""What every photo operation declares, and the registry of the declared ones.

An operation is one class, as a DRF view is one class with its ``serializer_class``: its name, its label, the
serializer of its options (the one place they are validated), the image kind it makes, the model kind it
needs, and what it does to a photo. ``register`` puts it on the registry; everything else is derived from
the registry: the admin actions (``admin/product.py``) and forms (``admin/operation_forms.py``), the API
routes and their schema (``api/editing.py``), the choices of ``GeneratedImage.kind`` (``models.image_kinds``)
and the system checks (``operation_checks``).
"""
import inspect
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import Model
from django.utils.translation import gettext as _
from PIL import Image
from rest_framework import serializers

from ...models import IMAGE_KINDS


class Operation:
    """Subclass, set the attributes, define ``apply`` (and ``describe``), and decorate with ``register``.

    The class docstring is the API route's description.
    """

    # -- required
    name: ClassVar[str]  # the job's parameters["operation"]; also names its URL and schema operation id
    label: ClassVar[str]  # what job messages, errors and the image's provenance call it
    serializer_class: ClassVar[type[serializers.Serializer]]  # its options: defaults, rules, schema, admin form
    result_kind: ClassVar[str]  # GeneratedImage.kind of its results (stored in the database: never renamed)
    # -- optional
    result_label: ClassVar[str | None] = None  # how the admin shows result_kind; the label when None
    model_kind: ClassVar[str | None] = None  # the ModelVersion kind it needs; None when it needs no trained model
    model_optional: ClassVar[bool] = False  # with a model kind: without an active version, run without one
    model_label: ClassVar[str | None] = None  # how the shop owner calls that model (its training choices, actions)
    # Whether a mask image may come with the request (``services.masks``), stored as ``options["mask"]``; its
    # serializer then has a ``mask`` field (the stored name) and its API route takes multipart/form-data.
    takes_mask: ClassVar[bool] = False
    path: ClassVar[str | None] = None  # the URL segment (products/<id>/<path>/); the name when None
    # Where it stands among the operations (admin actions, API routes, image kinds, model choices): by order,
    # then name. The modules are found in alphabetical order, which is no order a shop owner would choose.
    order: ClassVar[int] = 100
    # The admin action: its name, the title of its confirmation page (its "Queued N <title> job(s)" message too),
    # the button that confirms, and how the actions menu lists it. Defaults: "<name>_photos" and the label.
    action_name: ClassVar[str | None] = None
    action_title: ClassVar[str | None] = None
    action_button: ClassVar[str | None] = None
    action_description: ClassVar[str | None] = None
    # The form of its action, as a dotted path to an ``admin.operation_forms.OperationForm`` subclass; None: the
    # form is made from ``serializer_class``'s fields.
    admin_form: ClassVar[str | None] = None

    def apply(self, photo: Image.Image, options: dict, model: Any) -> Image.Image:
        """The result of the operation on ``photo`` (upright RGB or RGBA) with the cleaned (and prepared)
        ``options``; ``model`` is the loaded active version of ``model_kind``, or None. Runs in the job."""
        raise NotImplementedError

    def results(self, photo: Image.Image, options: dict, model: Any) -> list[tuple[int, Image.Image]]:
        """Every (seed, image) the job stores: ``apply``'s one result by default; an operation that makes
        variants (scenes) returns one per seed. A result's ``info["imagegen"]`` (plain JSON) goes into its
        image's parameters, for what the options alone do not say (model versions used, measurements); with
        ``"model_used": False`` there, its provenance says no trained model made its pixels."""
        return [(0, self.apply(photo, options, model))]

    def versions_used(self, prepared: dict) -> list[int]:
        """Ids of the model versions besides ``model_kind``'s that ``prepare`` loaded (for the provenance)."""
        return []

    def describe(self, options: dict) -> str:
        """The options in words, for the result's provenance."""
        return str(self.label)

    def describe_result(self, options: dict, info: dict) -> str:
        """What was done to make one result, for its provenance: ``describe`` unless the result's
        ``info["imagegen"]`` says more (which method ran, say)."""
        return self.describe(options)

    def load_models(self, options: dict, models) -> dict:
        """In the job, before ``prepare``: options to add, holding models besides ``model_kind``'s (a scene
        set's generator, say). ``models.active(kind, scene_set=None)`` is (serving version, loaded model), or
        (None, None). The keys it adds start with "_": they are never stored."""
        return {}

    def prepare(self, options: dict, read_photo: Callable[[Model], Image.Image]) -> dict:
        """In the job, before ``apply``: turns stored options into what ``apply`` needs (e.g. reference photos
        into a look), so the web request that queued the job never decodes photos or loads models.
        ``read_photo(product)`` is a product's primary photo, decoded as the job decodes its own."""
        return options

    def example_options(self, products: list) -> dict:
        """Options of a typical use on ``products`` (with photos): what the contract test applies it with. The
        serializer's defaults, unless the operation needs more."""
        return {}

    def clean(self, options: dict) -> dict:
        """The complete, validated options (through ``serializer_class``), or a ValidationError naming the
        field. Unknown options are refused here; the API's request serializer ignores them, as DRF does."""
        unknown = set(options) - set(self.option_names())
        if unknown:
            raise ValidationError({"options": _("Unknown option(s) for %(operation)s: %(options)s.") % {
                "operation": self.name, "options": ", ".join(sorted(unknown)),
            }})
        serializer = self.serializer_class(data=options)
        if not serializer.is_valid():
            raise ValidationError(
                {"options" if field == "non_field_errors" else field: messages(errors)
                 for field, errors in serializer.errors.items()}
            )
        return dict(serializer.validated_data)

    def option_names(self) -> list[str]:
        return [name for name, field in self.serializer_class().fields.items() if not field.read_only]

    # -- derived names
    @property
    def url_path(self) -> str:
        return self.path or self.name

    @property
    def api_description(self) -> str:
        return " ".join(inspect.cleandoc(type(self).__doc__ or "").split())

    @property
    def admin_action(self) -> str:
        return self.action_name or f"{self.name}_photos"

    @property
    def admin_title(self) -> str:
        return self.action_title or self.label

    @property
    def admin_button(self) -> str:
        return self.action_button or self.label

    @property
    def admin_description(self) -> str:
        return self.action_description or self.label

    @property
    def train_action(self) -> str | None:
        """The admin action that trains the model it needs, None when it needs none."""
        return f"train_{self.name}_model" if self.model_kind else None

    @property
    def model_name(self) -> str:
        """The model it needs, as a sentence names it ("enhancement (restoration) model")."""
        return str(self.model_label or self.model_kind).lower()

    @property
    def train_title(self) -> str:
        """The title of its train action's confirmation page."""
        return _("Train the %(model)s") % {"model": self.model_name}

    @property
    def train_description(self) -> str:
        return _("Train the %(model)s on selected products") % {"model": self.model_name}

    def __repr__(self) -> str:
        return f"<operation {self.name}>"


def messages(errors, item: str = "") -> list[str]:
    """DRF's errors of one field (a list; per item of a list field, a dict by index) as plain messages."""
    if isinstance(errors, dict):
        return [message for key, value in errors.items()
                for message in messages(value, f"{item}.{int(key) + 1}" if str(key).isdigit() else f"{item}.{key}")]
    if isinstance(errors, (list, tuple)):
        return [message for error in errors for message in messages(error, item)]
    return [_("Item %(item)s: %(error)s") % {"item": item[1:], "error": errors} if item else str(errors)]


OPERATIONS: dict[str, Operation] = {}


def register(cls: type[Operation]) -> type[Operation]:
    """Class decorator: put the operation on the registry (and its result kind among the image kinds)."""
    operation = cls()
    for attribute in ("name", "label", "serializer_class", "result_kind"):
        if not hasattr(operation, attribute):
            raise ImproperlyConfigured(f"The operation {cls.__name__} declares no {attribute}.")
    if operation.name in OPERATIONS and type(OPERATIONS[operation.name]) is not cls:
        raise ImproperlyConfigured(f"Two operations are named {operation.name!r}.")
    OPERATIONS[operation.name] = operation
    _reorder()
    return cls


def _reorder() -> None:
    """Keep the registry, and the image kinds derived from it, in the operations' declared order."""
    ordered = sorted(OPERATIONS.values(), key=lambda op: (op.order, op.name))
    OPERATIONS.clear()
    OPERATIONS.update((op.name, op) for op in ordered)
    IMAGE_KINDS.clear()
    for op in ordered:
        IMAGE_KINDS.setdefault(op.result_kind, op.result_label or op.label)


def unregister(name: str) -> None:
    """Take an operation off the registry (tests that register a throwaway one)."""
    OPERATIONS.pop(name)
    _reorder()


def get(name: str) -> Operation:
    try:
        return OPERATIONS[name]
    except KeyError:
        raise ValidationError({"operation": f"Unknown operation {name!r}; choose one of: {', '.join(OPERATIONS)}."}) from None


def all_operations() -> Iterable[Operation]:
    return list(OPERATIONS.values())
