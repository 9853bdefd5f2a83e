"""Background replacement: cut the product out of a photo, put it on white, a brand colour or a backdrop.

Public API (what imagegen calls):

    from mlcore.background import Segmenter, on_background, Shadow
    segmenter = Segmenter.from_checkpoint(source, device)   # or Segmenter.classical()
    mask = segmenter.mask(image)                             # PIL "L", 255 = product
    result = on_background(image, mask, background="white", fill=0.85, canvas=(1600, 1600), shadow=False)

    # training (a "background" checkpoint) from a shop's photos:
    config, data = training_set(photos)                          # ValueError if no photo qualifies
    trainer = Trainer(config, *data, batch_size=16, seed=0, device=device)
    trainer.fit(steps, max_seconds=..., callback=...); trainer.save(target)

Modules, one job each: ``images`` (modes, EXIF, alpha), ``lab`` (CIELAB), ``morphology``,
``classical`` (the border colour model and its verdict), ``textures`` and ``composites`` (training and
test pairs from the catalogue itself), ``data`` (the trainer's data from photos), ``config`` /
``networks`` / ``objective`` (the segmentation network and what the one ``Trainer`` trains it on),
``refine`` (guided filter), ``sampler`` (``Segmenter``, the public masker), ``compose`` (placement,
background, shadow).

Method: both, classical and self-trained. No pretrained segmentation model may be used, so the
shop's own photos have to supervise themselves:

- The classical border model (``classical``) is exact where it can judge the photo (a plain sheet,
  wall or table) and says so (its verdict); it cannot separate a garment from a textured backdrop.
  On the clothing photos it is confident about 36% of the train and 52% of the test photos.
- Its confident cut-outs, pasted on generated textures and on real photos' backgrounds, train a
  small U-Net (BCE + soft Dice, EMA, 8 minutes on 2 CPU cores) that needs no plain backdrop.
- ``Segmenter`` (method "combined") uses the border model where it is confident and the network
  everywhere else.

Measured (``bench/results/2026-11-22-background.md``: 180 composites of 90 held-out test products on
varied backdrops, known masks), mean IoU / share of images with IoU >= 0.9 / seconds per 1-MP photo
on 2 cores: combined 0.939 / 86% / 0.21, network alone 0.938 / 86% / 0.10, border model alone
0.637 / 46% / 0.24, GrabCut (OpenCV, rectangle init, 5 iterations) 0.891 / 80% / 4.6. The border
model alone fails on textured backdrops, hence the network. The network alone is nearly as good as
the combination on these composites; the combination is the default because on a plain backdrop the
border model cuts at the photo's full resolution instead of the network's 192 px (not measured on
real photos: there are no independent masks of them).
"""

from ..training.trainer import Trainer
from .composites import TrainingData, training_data
from .compose import Placement, Shadow, on_background, place
from .config import SegmenterConfig
from .data import training_set
from .sampler import Segmenter

__all__ = [
    "Placement", "Segmenter", "SegmenterConfig", "Shadow", "Trainer", "TrainingData", "on_background", "place",
    "training_data", "training_set",
]
