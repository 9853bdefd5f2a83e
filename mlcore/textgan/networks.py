"""The conditional GAN's networks with a ``ConditionEncoder`` in place of the class embedding tables."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..conditioning.encoder import ConditionEncoder
from ..gan.networks import CLASS_EMBED_DIM, Discriminator, Generator
from .config import TextGANConfig


def _encoder(config: TextGANConfig) -> ConditionEncoder:
    vocab = config.condition_vocab
    return ConditionEncoder(config.num_classes, vocab.attribute_sizes, vocab.vocab_size, CLASS_EMBED_DIM)


class TextGenerator(Generator):
    """Noise z and condition rows -> image; the encoded condition drives every conditional BatchNorm."""

    def __init__(self, config: TextGANConfig) -> None:
        super().__init__(config)
        self.class_embed = _encoder(config)


class TextDiscriminator(Discriminator):
    """Projection discriminator whose projection vector comes from its own condition encoder.

    Its own, not the generator's: sharing would let the generator move the target it is judged by.
    """

    def __init__(self, config: TextGANConfig) -> None:
        super().__init__(config)
        width = self.linear.weight.shape[1]
        self.condition = _encoder(config)
        self.class_embed = spectral_norm(nn.Linear(CLASS_EMBED_DIM, width, bias=False))

    def projection(self, labels: torch.Tensor) -> torch.Tensor:
        # Unit length before the spectrally normalised map: the projection term then has the scale of the
        # class-only kind's spectrally normalised embedding table, which keeps early logits moderate.
        return self.class_embed(F.normalize(self.condition(labels), dim=1))

    def all_class_logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of every image against every class given alone, N x num_classes."""
        config: TextGANConfig = self.config
        rows = config.class_rows(torch.arange(config.num_classes, device=images.device))
        h = self.features(images)
        return self.linear(h) + h @ self.projection(rows).t()
