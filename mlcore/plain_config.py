"""The checkpoint round trip every photo-model config shares: to and from plain python data."""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeVar

C = TypeVar("C", bound="PlainConfig")


class PlainConfig:
    """Mixin for a config dataclass whose fields are all plain python values."""

    def to_dict(self) -> dict[str, Any]:
        """Plain python types only, so checkpoints load with ``weights_only=True``."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Rebuild a config; unknown keys raise ``ValueError`` (ignoring one would rebuild another model)."""
        if not isinstance(data, dict):
            raise ValueError(f"config must be a dict, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})  # type: ignore[arg-type]
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}")
        return cls(**data)
