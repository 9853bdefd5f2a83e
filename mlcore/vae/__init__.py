"""Variational autoencoders ("vae" unconditional, "cvae" class-conditional) with the cgan kind's interface.

Layers, as for the GAN: ``config`` (shapes) -> ``networks`` (pure nn.Modules) ->
``objectives`` (pure ELBO functions) -> ``trainer`` (loop, EMA, checkpoints) and
``sampler`` (inference from a checkpoint). Modules load lazily via ``mlcore.registry``.
"""
