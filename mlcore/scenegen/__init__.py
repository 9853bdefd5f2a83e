"""The scene generator ("scenes" kind): an unconditional GAN that learns a shop's *scene set* (a few dozen to
hundreds of backdrop photos: empty tables, walls, floors, fabrics, or its own product photos with the product
removed, see ``mlcore.scenes.backdrops``) and draws new backdrops for the product to be composed onto.

Layers as in ``mlcore.gan``: ``config`` (shapes) -> ``networks`` (a FastGAN-lite generator and a
discriminator with a self-supervised reconstruction head, pure nn.Modules) -> ``objective`` (the D and G
steps the one ``Trainer`` runs, reusing ``mlcore.gan``'s losses, R1 and ``mlcore.augment``'s DiffAugment)
and ``sampler`` (``SceneGenerator``: the EMA generator of a checkpoint); ``data`` turns photos into the
trainer's data (the registry's ``prepare``).

Public API::

    from mlcore.scenegen.data import training_set, MIN_PHOTOS
    config, data = training_set(photos, image_size=256)          # ValueError below MIN_PHOTOS usable photos
    trainer = Trainer(config, *data, seed=0); trainer.fit(steps, max_seconds=...); trainer.save(target)
    scenes = SceneGenerator.from_checkpoint(source, device="cpu")
    scenes.backdrops(count, seed) -> [PIL RGB image_size x image_size]
    scenes.backdrop((width, height), seed) -> PIL RGB of that size (cover-resized, centre-cropped)

Nothing is imported here, so importing the package does not import torch.
"""
