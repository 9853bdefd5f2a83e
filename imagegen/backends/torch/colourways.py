"""Colourways: the product of a photo recoloured inside its matte (``mlcore.colourways``).

The backend imports this module when it is first asked for.
"""
import torch
from mlcore.cielab import srgb_to_lab
from mlcore.colourways import product_colour, recolour, target_rgb
from mlcore.photos import has_alpha
from mlcore.scenes import soft_matte
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from .scenes import product_mask


def _lab(image: Image.Image) -> torch.Tensor:
    return srgb_to_lab(pil_to_tensor(image.convert("RGB")).float() / 255.0)


def recolour_product(photo: Image.Image, segmenter, colour: str) -> tuple[Image.Image, dict]:
    """(``photo`` with its product in ``colour``, what was measured: the product's dominant colour before and
    after and its CIE76 distance from the colour asked for). A ValueError when the product cannot be cut out."""
    rgb = photo.convert("RGB")
    matte = soft_matte(rgb, product_mask(photo, segmenter))
    result = recolour(rgb, matte, colour)
    alpha = pil_to_tensor(matte)[0].float() / 255.0
    target = _lab(Image.new("RGB", (1, 1), target_rgb(colour))).view(3)
    before, after = product_colour(_lab(rgb), alpha), product_colour(_lab(result), alpha)
    if has_alpha(photo):
        result.putalpha(photo.convert("RGBA").getchannel("A"))
    return result, {
        "product_share": round(float(alpha.mean()), 4),
        "colour_before": [round(float(v), 1) for v in before],
        "colour_after": [round(float(v), 1) for v in after],
        "delta_e": round(float((after - target).norm()), 2),
    }
