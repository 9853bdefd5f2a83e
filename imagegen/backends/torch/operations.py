"""The photo operations' work that needs mlcore beyond a loaded model (``services.operations``): cutting the
product out and placing it on a backdrop, finding specks, and reading a brand look from photos.

The backend imports this module when one of these is first asked for.
"""
import torch
from mlcore.background import Segmenter, on_background
from mlcore.background.specks import find_backdrop_specks as _find_specks
from mlcore.background.textures import studio_sweep
from mlcore.brandlook.look import look_of
from PIL import Image


def place_on_background(
    photo: Image.Image, segmenter, *, background, fill: float, canvas: tuple[int, int] | None, shadow: bool,
    studio_colour: tuple[int, int, int] | None = None, studio_seed: int = 0,
) -> Image.Image:
    """``photo``'s product, cut out with ``segmenter`` (the classical border-colour one when None), centred
    on ``background`` ("white", "transparent" or (r, g, b)) or, with ``studio_colour``, on a generated
    studio sweep in that colour whose grain is ``studio_seed``'s. A ValueError when nothing is cut out."""
    segmenter = segmenter or Segmenter.classical()
    mask = segmenter.mask(photo)
    if studio_colour is not None:
        colour = torch.tensor(studio_colour) / 255.0

        def background(height, width):
            return studio_sweep(colour, height, width, torch.Generator().manual_seed(studio_seed))

    return on_background(photo, mask, background=background, fill=fill, canvas=canvas, shadow=shadow)


def find_backdrop_specks(photo: Image.Image):
    """Dust and specks on ``photo``'s plain backdrop: ``.mask`` (None when they cannot be found reliably,
    ``.reason`` says why) and ``.as_image()``, an "L" mask."""
    return _find_specks(photo)


def brand_look_of(photos: list[Image.Image]):
    """The colour and tone the reference ``photos`` share, as the brand-look model takes it."""
    return look_of(photos)
