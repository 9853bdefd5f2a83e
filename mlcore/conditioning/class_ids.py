"""Condition ids of the kinds that condition on the category alone.

Every config class offers ``for_training(...)`` (build a config from the training set's conditions) and
``condition_ids(categories, attributes, texts)`` (product conditions -> the tensor the trainer and sampler
take as ``labels``). Class-only kinds read the category and ignore attributes and text, so callers can
hand every kind the same product data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    """Mixin for config dataclasses with a ``classes`` list."""

    classes: list[str]

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
