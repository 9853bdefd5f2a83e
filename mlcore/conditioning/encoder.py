"""Condition rows (category, attributes, words) -> one vector the generator or discriminator uses.

Condition rows are long tensors N x (1 + K + MAX_WORDS): the class id (``num_classes`` = not given),
K attribute ids (0 = not given) and the word ids (0 = padding), as ``TextGANConfig.condition_ids``
packs them. Keeping the whole condition in one tensor lets the text-conditioned kind reuse the
trainer's batch sampling, checkpoints and samplers unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from .vocab import ATTRIBUTE_KEYS, MAX_WORDS, PAD

ROW_WIDTH = 1 + len(ATTRIBUTE_KEYS) + MAX_WORDS


def split_rows(rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(class ids N, attribute ids N x K, word ids N x MAX_WORDS) of condition rows."""
    keys = len(ATTRIBUTE_KEYS)
    return rows[:, 0], rows[:, 1 : 1 + keys], rows[:, 1 + keys :]


class TextEncoder(nn.Module):
    """Bag of the product's words: mean of learned word vectors, then an MLP.

    Order-free on purpose: titles are short noun phrases ("red leather skirt", "skirt, red leather")
    whose meaning barely depends on word order, and a few hundred titles cannot train more.
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.words = nn.Embedding(vocab_size, dim, padding_idx=PAD)
        self.mlp = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, word_ids: torch.Tensor) -> torch.Tensor:
        present = (word_ids != PAD).float()
        count = present.sum(dim=1, keepdim=True)
        mean = (self.words(word_ids) * present[..., None]).sum(dim=1) / count.clamp(min=1.0)
        # A text with no known word contributes nothing, like a missing attribute.
        return self.mlp(mean) * (count > 0).float()


class ConditionEncoder(nn.Module):
    """Sum of a class embedding, one embedding per given attribute and the text vector, through an MLP."""

    def __init__(self, num_classes: int, attribute_sizes: list[int], vocab_size: int, dim: int) -> None:
        super().__init__()
        # One extra row: the class "not given", used when only text or attributes describe the product.
        self.classes = nn.Embedding(num_classes + 1, dim)
        self.attributes = nn.ModuleList(nn.Embedding(size, dim, padding_idx=0) for size in attribute_sizes)
        self.text = TextEncoder(vocab_size, dim)
        self.mix = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim))
        # Unit variance per component, the scale of the class-only kind's N(0, 1) embedding table, however
        # many parts of a description are given.
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        class_ids, attribute_ids, word_ids = split_rows(rows)
        h = self.classes(class_ids) + self.text(word_ids)
        for index, table in enumerate(self.attributes):
            h = h + table(attribute_ids[:, index])
        return self.norm(h + self.mix(h))
