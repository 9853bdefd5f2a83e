"""Training the "tcgan" kind: the GAN trainer with condition rows and condition dropout."""

from __future__ import annotations

from typing import Any

import torch

from ..conditioning.encoder import split_rows
from ..trainer import Trainer as GANTrainer
from .config import TextGANConfig
from .networks import TextDiscriminator, TextGenerator


class Trainer(GANTrainer):
    """Trains a ``TextGANConfig`` model on uint8 images with condition rows as labels."""

    RESUMES = ("tcgan",)
    GENERATOR = TextGenerator
    DISCRIMINATOR = TextDiscriminator

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> TextGANConfig:
        return TextGANConfig.from_dict(data)

    def _condition_batch(self, labels: torch.Tensor) -> torch.Tensor:
        """Hide the category, each attribute and the text independently with probability condition_drop.

        Both networks see the same hidden rows, so "not given" is learned as "any", which is what lets a
        shop generate from a title alone."""
        p = self.config.condition_drop
        if p == 0:
            return labels
        rows = labels.clone()
        class_ids, attribute_ids, word_ids = split_rows(rows)
        n, keys = attribute_ids.shape
        drop_class, drop_attributes, drop_text = (
            (torch.rand(n, generator=self.rng) < p).to(rows.device),
            (torch.rand(n, keys, generator=self.rng) < p).to(rows.device),
            (torch.rand(n, generator=self.rng) < p).to(rows.device),
        )
        class_ids[drop_class] = self.config.num_classes
        attribute_ids[drop_attributes] = 0
        word_ids[drop_text] = 0
        return rows

    def _grid_labels(self, columns: int) -> torch.Tensor:
        """One row per class, each column the full condition row (category, attributes, text) of one of that
        class's training products, as products are generated; the category alone where a class has none."""
        labels = self.labels.cpu()
        rows = []
        for class_id in range(self.config.num_classes):
            own = labels[labels[:, 0] == class_id]
            if len(own) == 0:
                own = self.config.class_rows(torch.tensor([class_id]))
            picks = torch.linspace(0, len(own) - 1, columns).round().long()
            rows.append(own[picks])
        return torch.cat(rows)

    def _calibration_labels(self, count: int) -> torch.Tensor:
        """Full condition rows of training products spread over the dataset, so BatchNorm statistics
        match what products are generated with."""
        picks = torch.linspace(0, len(self.labels) - 1, count).round().long()
        return self.labels.cpu()[picks]
