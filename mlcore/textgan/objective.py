"""The "tcgan" objective: the GAN's D and G steps on condition rows (category, attributes, text), with
condition dropout, and grids and BatchNorm calibration from the training products' own descriptions."""

from __future__ import annotations

import torch

from ..conditioning.encoder import split_rows
from ..gan.objective import GANObjective
from .config import TextGANConfig
from .networks import TextDiscriminator, TextGenerator


class TextGANObjective(GANObjective):
    """Trains a ``TextGANConfig`` model on uint8 images with condition rows as labels."""

    CONFIG = TextGANConfig
    GENERATOR = TextGenerator
    DISCRIMINATOR = TextDiscriminator

    def condition_batch(self, labels: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
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
            (torch.rand(n, generator=rng) < p).to(rows.device),
            (torch.rand(n, keys, generator=rng) < p).to(rows.device),
            (torch.rand(n, generator=rng) < p).to(rows.device),
        )
        class_ids[drop_class] = self.config.num_classes
        attribute_ids[drop_attributes] = 0
        word_ids[drop_text] = 0
        return rows

    def grid_labels(self, columns: int) -> torch.Tensor:
        """One row per class, each column the full condition row (category, attributes, text) of one of that
        class's training products, as products are generated; the category alone where a class has none."""
        labels = self.data.labels.cpu()
        rows = []
        for class_id in range(self.config.num_classes):
            own = labels[labels[:, 0] == class_id]
            if len(own) == 0:
                own = self.config.class_rows(torch.tensor([class_id]))
            picks = torch.linspace(0, len(own) - 1, columns).round().long()
            rows.append(own[picks])
        return torch.cat(rows)

    def calibration_labels(self, count: int) -> torch.Tensor:
        """Full condition rows of training products spread over the dataset, so BatchNorm statistics
        match what products are generated with."""
        picks = torch.linspace(0, len(self.data.labels) - 1, count).round().long()
        return self.data.labels.cpu()[picks]
