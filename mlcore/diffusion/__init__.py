"""Class-conditional denoising diffusion ("ddpm" kind) with the cgan kind's interface.

Layers, as for the GAN and the VAE: ``config`` (shapes) -> ``networks`` (a pure nn.Module UNet) ->
``objective`` (noise schedule, epsilon loss, DDIM sampling with classifier-free guidance, and the step the one
``Trainer`` runs) and ``sampler`` (inference from a checkpoint). Modules load lazily via ``mlcore.registry``.
"""
