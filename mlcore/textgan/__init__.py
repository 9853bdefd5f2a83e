"""The "tcgan" kind: the conditional GAN conditioned on category, attributes and the product's own text.

``config`` -> ``networks`` (the GAN's, with condition encoders) -> ``objective`` (the GAN's steps with
condition dropout) and ``sampler``, as in ``mlcore.gan``."""
