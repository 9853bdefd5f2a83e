"""Variational autoencoders ("vae" unconditional, "cvae" class-conditional) with the cgan kind's interface.

Layers, as for the GAN: ``config`` (shapes) -> ``networks`` (pure nn.Modules) -> ``objective`` (pure ELBO
functions and the step the one ``Trainer`` runs) and ``sampler`` (inference from a checkpoint). Modules load
lazily via ``mlcore.registry``.
"""
