"""The "tcgan" kind: the conditional GAN conditioned on category, attributes and the product's own text."""
