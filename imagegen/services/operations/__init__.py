"""The operations a shop can run on its real photos, by name. Each module defines one ``Operation``:
what options it takes, which trained model (if any) it needs, and what it does to a decoded photo."""
from .base import Operation

OPERATIONS: dict[str, Operation] = {}


def register(operation: Operation) -> Operation:
    OPERATIONS[operation.name] = operation
    return operation


def get(name: str) -> Operation:
    from django.core.exceptions import ValidationError

    try:
        return OPERATIONS[name]
    except KeyError:
        raise ValidationError({"operation": f"Unknown operation {name!r}; choose one of: {', '.join(OPERATIONS)}."}) from None


__all__ = ["OPERATIONS", "Operation", "get", "register"]


def _register_all() -> None:
    from . import background, brandlook, enhance, repair

    for module in (enhance, repair, background, brandlook):
        register(module.OPERATION)


_register_all()
