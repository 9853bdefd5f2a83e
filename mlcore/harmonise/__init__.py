"""Harmonisation: recolour a product pasted on a new backdrop so that its colour and brightness fit the scene.

    from mlcore.harmonise import Harmoniser
    harmoniser = Harmoniser.from_checkpoint(source)
    new_product, report = harmoniser(product_rgb, alpha, backdrop_rgb, max_delta_e=8.0)

The model predicts one bounded global colour transform of the product (gains and a colour matrix on linear
light, gamma, contrast and offsets on sRGB values; ``transform``) from the composite squeezed to a small
square; it is applied to every product pixel at full resolution, and a ΔE budget (CIE76) caps the change of
every product pixel by construction.

Trained without labels on the shop's own photos ("harmonise" in ``mlcore.registry``): a real photo's product
fits its backdrop, so its product is perturbed (``perturb``: exposure, white balance, saturation, gamma,
contrast) and the network learns to undo the perturbation from the backdrop it still sits on.

Modules, one job each: ``config``, ``transform`` (the transform, its bounds, the ΔE budget), ``perturb`` (the
random perturbations and their exact inverses), ``networks``, ``data`` (photos -> training data, product
masks), ``objective``, ``sampler`` (``Harmoniser``), ``classical`` (Reinhard and histogram-matching baselines)
and ``evaluation`` (the restoration benchmark). Nothing here imports Django.
"""

from .config import HarmoniseConfig
from .sampler import Harmoniser

__all__ = ["HarmoniseConfig", "Harmoniser"]
