"""Brand look: map a selection of product photos to the colour and tone of a few reference photos.

Layers, as for the generator kinds: ``config`` (shapes, loss weights) -> ``networks`` (the LUT bank and the
tiny weight predictor, pure nn.Modules) -> ``objective`` (pure loss functions and the batches the one
``Trainer`` trains on) and ``sampler`` (``BrandLook``: inference from a checkpoint); ``data`` makes the
training data from PIL photos ("brandlook" in ``mlcore.registry``). Around them, one job each:
``colour`` (sRGB <-> CIELAB on tensors), ``look`` (the look of a set of photos, plain data), ``distance``
(the colour-statistics distance the benchmark reports), ``lut`` (trilinear 3D LUTs), ``basis`` (the fixed
analytic tables of the bank), ``grading`` (the random colour/tone changes training learns from),
``images`` (PIL plumbing, alpha carried over), ``classical`` (the Reinhard and histogram-matching baselines)
and ``edges`` (structural similarity of the luminance edges). Nothing here imports Django.
"""
