"""``Harmoniser``: a trained harmonisation checkpoint, frozen for inference (the sampler layer).

    harmoniser = Harmoniser.from_checkpoint("harmonise.pt")
    new_product, report = harmoniser(product_rgb, alpha, backdrop_rgb)   # what scene composition calls
    photo2 = harmoniser.harmonise_photo(photo, mask)                     # a photo's product onto its own backdrop

The network sees the composite (the product over the backdrop) squeezed to the config's ``size`` square, as
in training; the predicted global transform is then applied to every product pixel at full resolution, within
the ΔE budget (``transform.apply_within_budget``).
"""

from __future__ import annotations

import torch
from PIL import Image

from ..background.images import mask_from_image, prepare, to_tensor
from ..brandlook.images import rgb_image
from ..sampling import FrozenNetwork
from .config import KIND, HarmoniseConfig
from .data import product_alpha, squeeze
from .networks import HarmoniseNet
from .transform import apply_within_budget, check_inputs


class Harmoniser(FrozenNetwork):
    """The EMA network of a "harmonise" checkpoint."""

    KIND = KIND
    CONFIG = HarmoniseConfig
    NETWORK = HarmoniseNet

    @torch.inference_mode()
    def predict(self, product_rgb: torch.Tensor, alpha: torch.Tensor, backdrop_rgb: torch.Tensor) -> torch.Tensor:
        """The transform parameters (14, ``transform``; zeros = no change) for the product (float 3 x H x W in
        [0, 1], straight colour) with ``alpha`` (float H x W in [0, 1]) over ``backdrop_rgb`` (float 3 x H x W)."""
        product, alpha, backdrop = check_inputs(product_rgb, alpha, backdrop_rgb)
        composite = alpha * product + (1 - alpha) * backdrop
        small = squeeze(torch.cat((composite, alpha[None]))[None], self.config.size).to(self.device)
        return self.model(small[:, :3], small[:, 3:])[0].float().cpu()

    @torch.inference_mode()
    def __call__(
        self, product_rgb: torch.Tensor, alpha: torch.Tensor, backdrop_rgb: torch.Tensor, *, max_delta_e: float | None = None,
    ) -> tuple[torch.Tensor, dict]:
        """(the product recoloured to fit the backdrop: float 3 x H x W, the report of
        ``transform.apply_within_budget``). No product pixel (alpha > 0.5) changes by more than ``max_delta_e``
        (CIE76; default the config's budget, ``math.inf`` for none)."""
        budget = self.config.max_delta_e if max_delta_e is None else float(max_delta_e)
        product, alpha, _ = check_inputs(product_rgb, alpha, backdrop_rgb)
        params = self.predict(product_rgb, alpha, backdrop_rgb)
        return apply_within_budget(product, alpha, params, budget)

    def harmonise_photo(self, photo: Image.Image, mask: Image.Image | None = None, *, max_delta_e: float | None = None) -> Image.Image:
        """``photo``'s product (``mask``: "L", 255 = product; default the photo's own alpha or
        ``data.product_alpha``) harmonised with its own backdrop; RGB, or RGBA when the photo had an alpha."""
        rgb, own = prepare(photo)
        if mask is not None:
            alpha = mask_from_image(mask, rgb.size)
        elif own is not None:
            alpha = to_tensor(own)[0].float() / 255.0
        else:
            alpha = product_alpha(rgb)[0]
        pixels = to_tensor(rgb).float() / 255.0
        new, _ = self(pixels, alpha, pixels, max_delta_e=max_delta_e)
        out = rgb_image(torch.where(alpha > 0, alpha * new + (1 - alpha) * pixels, pixels))
        if own is not None:
            out.putalpha(own)
        return out
