"""The class-conditional GAN ("cgan" kind): ``config`` (shapes) -> ``networks`` (generator and projection
discriminator, pure nn.Modules) -> ``objective`` (the losses and the D/G steps the one ``Trainer`` runs) and
``sampler`` (inference from a checkpoint). Modules load lazily via ``mlcore.registry``."""
