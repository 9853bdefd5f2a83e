"""Generate and score images with a "tcgan" checkpoint, from a category, attributes and text."""

from __future__ import annotations

from ..gan.sampler import Sampler as GANSampler
from .config import TextGANConfig
from .networks import TextDiscriminator, TextGenerator


class Sampler(GANSampler):
    """``generate_for(seeds, category=, attributes=, text=)`` uses every part of a product description;
    ``generate_seeds``/``score`` with a class name condition on the category alone."""

    KIND = "tcgan"
    CONFIG = TextGANConfig
    GENERATOR = TextGenerator
    DISCRIMINATOR = TextDiscriminator

    def unknown(self, attributes=None, text=None) -> list[str]:
        """Parts of a description this model never saw in training (they are ignored)."""
        return self.config.condition_vocab.unknown(attributes, text)
