"""System checks of the photo operations' registry (``services.operations``): the declarations must fit
together, since the image kinds, API routes, admin actions and forms are all derived from them."""
from django.core import checks

from .checks import backend_or_none
from .models import GeneratedImage
from .services import operations


@checks.register()
def check_operations(app_configs=None, **kwargs):
    """The photo operations' declarations (``services.operations``) fit together: everything derived from
    them (image kinds, API routes, admin actions and forms) needs their names to be distinct and complete."""
    errors = []
    backend = backend_or_none()
    max_length = GeneratedImage._meta.get_field("kind").max_length
    seen: dict[str, dict[str, str]] = {"kind": {GeneratedImage.Kind.GENERATED: "the generators"}, "path": {}, "action": {}}
    for op in operations.all_operations():
        names = {"kind": [op.result_kind], "path": [op.url_path], "action": [op.admin_action, op.train_action]}
        for what, values in names.items():
            for value in filter(None, values):
                if value in seen[what]:
                    errors.append(checks.Error(
                        f"The operations {seen[what][value]} and {op.name} both use the {what} {value!r}.", id="imagegen.E070"
                    ))
                seen[what][value] = op.name
        if len(op.result_kind) > max_length:
            errors.append(checks.Error(
                f"The result kind {op.result_kind!r} of the operation {op.name} is longer than {max_length} characters.",
                id="imagegen.E070",
            ))
        if backend is not None and op.model_kind is not None and op.model_kind not in backend.photo_model_kinds():
            errors.append(checks.Error(
                f"The operation {op.name} needs the model kind {op.model_kind!r}, which the backend does not train.",
                hint=f"Photo models: {', '.join(backend.photo_model_kinds())}.", id="imagegen.E071",
            ))
        if op.takes_mask and "mask" not in op.option_names():
            errors.append(checks.Error(
                f"The operation {op.name} takes a mask but its serializer has no mask option.", id="imagegen.E072"
            ))
        try:
            # The admin form is derived when the admin runs; a field it cannot show is found now instead.
            from .admin.operation_forms import form_for

            form_for(op)()
        except Exception as exc:  # noqa: BLE001 - an import error or ImproperlyConfigured, reported as such
            errors.append(checks.Error(
                f"The admin form of the operation {op.name} cannot be made: {exc}",
                hint="Give the operation an admin_form for options a page cannot show (files, nested lists).",
                id="imagegen.E073",
            ))
        if not op.api_description:
            errors.append(checks.Warning(
                f"The operation {op.name} has no docstring: its API route has no description.", id="imagegen.W030"
            ))
    return errors
