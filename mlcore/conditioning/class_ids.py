"""What every generator config shares: its class list (validated), the plain-dict round trip checkpoints
use, and condition ids for the kinds that condition on the category alone.

Every config class offers ``for_training(...)`` (build a config from the training set's conditions) and
``condition_ids(categories, attributes, texts)`` (product conditions -> the tensor the trainer and sampler
take as ``labels``). Class-only kinds read the category and ignore attributes and text, so callers can
hand every kind the same product data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields
from typing import Any

import torch


def class_index(classes: Sequence[str], name: str | None) -> int:
    """Index of ``name`` in ``classes``; ``KeyError`` naming the known classes otherwise."""
    if name is None:
        raise KeyError(f"a category is needed; known categories: {', '.join(classes)}")
    try:
        return list(classes).index(name)
    except ValueError:
        raise KeyError(f"unknown class {name!r}; known classes: {', '.join(classes)}") from None


class ClassConditioned:
    """Mixin for config dataclasses with a ``classes`` list (``classes[i]`` is the label of class id ``i``)."""

    classes: list[str]

    def _check_classes(self) -> None:
        """Normalise ``classes`` to a list; ``ValueError`` unless it holds distinct non-empty strings."""
        name = type(self).__name__
        self.classes = list(self.classes)
        if not self.classes:
            raise ValueError(f"{name}.classes must name at least one class")
        if not all(isinstance(c, str) and c for c in self.classes):
            raise ValueError(f"{name}.classes must be non-empty strings")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{name}.classes has duplicates: {self.classes}")

    @property
    def num_classes(self) -> int:
        """How many classes the model knows."""
        return len(self.classes)

    def to_dict(self) -> dict[str, Any]:
        """Plain python types only, so checkpoints load with ``weights_only=True``."""
        data = asdict(self)
        data["classes"] = list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        """Rebuild a config; unknown keys or a missing ``classes`` raise ``ValueError``.

        Unknown keys are refused rather than dropped: silently ignoring one
        would rebuild a different model than the one that was trained.
        """
        if not isinstance(data, dict):
            raise ValueError(f"config must be a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {unknown}")
        if "classes" not in data:
            raise ValueError(f"{cls.__name__} dict is missing 'classes'")
        return cls(**data)

    @classmethod
    def for_training(
        cls,
        *,
        classes: Sequence[str],
        image_size: int,
        attributes: Sequence[Mapping[str, str]] | None = None,
        texts: Sequence[str] | None = None,
        **options: Any,
    ):
        """The config of a new model for a training set; class-only kinds ignore attributes and texts."""
        return cls(classes=list(classes), image_size=image_size, **options)

    def condition_ids(
        self,
        categories: Sequence[str | None],
        attributes: Sequence[Mapping[str, str] | None] | None = None,
        texts: Sequence[str | None] | None = None,
    ) -> torch.Tensor:
        """Class ids (long tensor N) of ``categories``; attributes and texts are not used by this kind."""
        return torch.tensor([class_index(self.classes, name) for name in categories], dtype=torch.long)

    def check_condition_ids(self, labels: torch.Tensor, count: int) -> None:
        """``ValueError`` unless ``labels`` are ``count`` class ids of this config."""
        if labels.dtype != torch.long or labels.dim() != 1 or len(labels) != count:
            raise ValueError(f"labels must be a long tensor of length {count}")
        if count and (int(labels.min()) < 0 or int(labels.max()) >= len(self.classes)):
            raise ValueError(f"labels must lie in [0, {len(self.classes) - 1}]")

    def class_rows(self, class_ids: torch.Tensor) -> torch.Tensor:
        """Condition ids that give the class alone (for class-only kinds, the class ids themselves)."""
        return class_ids

    @property
    def uses_text(self) -> bool:
        """Whether attributes and text change what this kind generates."""
        return False
