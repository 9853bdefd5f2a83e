"""The operations a shop can run on its real photos, by name.

Every module of this package but ``base`` declares one operation (``base.Operation``) and registers it;
importing the package imports them all, so adding an operation is adding a module here (and, for a new
model, its ``mlcore`` package). The admin, the API and the image kinds are derived from ``OPERATIONS``.
"""
import pkgutil
from importlib import import_module

from .base import OPERATIONS, Operation, all_operations, get, register, unregister

__all__ = ["OPERATIONS", "Operation", "all_operations", "get", "register", "unregister"]


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            import_module(f"{__name__}.{module.name}")


_discover()
