"""Configuration of the "tcgan" kind: a ``GANConfig`` plus the vocabulary of its training catalogue."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..gan.config import GANConfig
from ..conditioning.class_ids import class_index
from ..conditioning.encoder import ROW_WIDTH
from ..conditioning.vocab import ConditionVocab


@dataclass
class TextGANConfig(GANConfig):
    """``vocab`` is ``ConditionVocab.to_dict()`` of the training set. ``condition_drop`` is the chance that
    training hides each of the category, each attribute and the text from both networks, so the model
    also learns to generate from any part of a description (text alone, category alone, ...)."""

    vocab: dict[str, Any] = field(default_factory=dict)
    condition_drop: float = 0.25
    kind: str = "tcgan"

    KIND = "tcgan"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._vocab = ConditionVocab.from_dict(self.vocab)
        self.vocab = self._vocab.to_dict()
        if isinstance(self.condition_drop, bool) or not 0.0 <= float(self.condition_drop) < 1.0:
            raise ValueError(f"condition_drop must be in [0, 1), got {self.condition_drop!r}")
        self.condition_drop = float(self.condition_drop)

    @property
    def condition_vocab(self) -> ConditionVocab:
        return self._vocab

    @property
    def uses_text(self) -> bool:
        return True

    @classmethod
    def for_training(
        cls,
        *,
        classes: Sequence[str],
        image_size: int,
        attributes: Sequence[Mapping[str, str] | None] | None = None,
        texts: Sequence[str | None] | None = None,
        **options: Any,
    ) -> TextGANConfig:
        vocab = ConditionVocab.build(attributes or [], texts or [])
        return cls(classes=list(classes), image_size=image_size, vocab=vocab.to_dict(), **options)

    def condition_ids(
        self,
        categories: Sequence[str | None],
        attributes: Sequence[Mapping[str, str] | None] | None = None,
        texts: Sequence[str | None] | None = None,
    ) -> torch.Tensor:
        """Condition rows N x ROW_WIDTH; a category of None means "not given" (text or attributes only)."""
        count = len(categories)
        attributes = list(attributes) if attributes is not None else [None] * count
        texts = list(texts) if texts is not None else [None] * count
        if not len(attributes) == len(texts) == count:
            raise ValueError("categories, attributes and texts must have the same length")
        class_ids = torch.tensor(
            [self.num_classes if name is None else class_index(self.classes, name) for name in categories], dtype=torch.long
        )
        vocab = self.condition_vocab
        return torch.cat([class_ids[:, None], vocab.attribute_ids(attributes), vocab.token_ids(texts)], dim=1)

    def class_rows(self, class_ids: torch.Tensor) -> torch.Tensor:
        rows = torch.zeros(len(class_ids), ROW_WIDTH, dtype=torch.long, device=class_ids.device)
        rows[:, 0] = class_ids
        return rows

    def check_condition_ids(self, labels: torch.Tensor, count: int) -> None:
        if labels.dtype != torch.long or labels.dim() != 2 or tuple(labels.shape) != (count, ROW_WIDTH):
            raise ValueError(f"labels must be condition rows, a long tensor {count} x {ROW_WIDTH}")
        if not count:
            return
        limits = [self.num_classes + 1] + self.condition_vocab.attribute_sizes
        limits += [self.condition_vocab.vocab_size] * (ROW_WIDTH - len(limits))
        if int(labels.min()) < 0 or bool((labels >= torch.tensor(limits, device=labels.device)).any()):
            raise ValueError("condition rows hold ids outside the vocabulary of this config")

