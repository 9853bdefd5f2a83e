"""Backend methods whose module (and with it torch) is imported on first use."""
from importlib import import_module
from typing import Any


class In:
    """A backend method: the function of the same name in ``module`` (relative to this package), imported
    when the method is first looked up."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return getattr(import_module(f"{__package__}.{self.module}"), self.name)
