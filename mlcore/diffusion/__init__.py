"""Class-conditional denoising diffusion ("ddpm" kind) with the cgan kind's interface.

Layers, as for the GAN and the VAE: ``config`` (shapes) -> ``networks`` (a pure
nn.Module UNet) -> ``objectives`` (noise schedule, epsilon loss, DDIM sampling
with classifier-free guidance) -> ``trainer`` (loop, EMA, checkpoints) and
``sampler`` (inference from a checkpoint). Modules load lazily via ``mlcore.registry``.
"""
