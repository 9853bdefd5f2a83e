"""The photo operations' work that needs mlcore beyond a loaded model (``services.operations``): cutting the
product out and placing it on a backdrop, finding specks, reading a brand look from photos, and running
Enhance's tasks, Repair's fills and Expand's margins each by its validated choice (and what a photo needs).

The backend imports this module when one of these is first asked for.
"""
import numpy as np
import torch
from mlcore.background import Segmenter, on_background
from mlcore.background.specks import find_backdrop_specks as _find_specks
from mlcore.background.textures import studio_sweep
from mlcore.brandlook.look import look_of
from mlcore.inpainting import classical as fills
from mlcore.inpainting.outpaint import expand
from mlcore.inpainting.validation import LARGE_HOLE
from mlcore.method_choice import step, unmeasured
from mlcore.photos import has_alpha
from mlcore.restoration import detect, tasks
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


def needed_enhancements(photo: Image.Image) -> tuple[list[str], dict]:
    """(the Enhance corrections ``photo`` needs, in the order they run; the measurements that said so)."""
    return detect.needed(photo.convert("RGB"))


def enhance_photo(photo: Image.Image, names: list[str], *, upscale: int, choices: dict | None, restorer) -> tuple:
    """(``photo`` with the corrections ``names`` made and enlarged ``upscale`` times, each by its validated
    choice (the classical tool without ``choices``); the steps that ran)."""
    return tasks.enhance(photo, names, upscale=upscale, choices=choices, restorer=restorer)


def repair_photo(photo: Image.Image, mask: Image.Image, choices: dict | None, inpainter) -> tuple[Image.Image, dict]:
    """(``photo`` with ``mask``'s holes filled by what won holes of their size on held-out photos (OpenCV's
    Telea without ``choices``), the step: task, method, tool, measured)."""
    hole = np.asarray(mask.convert("L")) >= 128
    task = "repair_large" if hole.mean() > LARGE_HOLE else "repair_small"
    choice = (choices or {}).get(task) or unmeasured(fills.TELEA.name)
    if choice["method"] == "model":
        return inpainter.repair(photo, mask), step(task, choice)
    rgb = np.asarray(photo.convert("RGB"))
    out = Image.fromarray(fills.named(choice["tool"]).apply(rgb, hole))
    if has_alpha(photo):
        out.putalpha(photo.convert("RGBA").getchannel("A"))
    return out, step(task, choice)


def expand_photo(photo: Image.Image, margins, choices: dict | None, inpainter) -> tuple[Image.Image, dict]:
    """(``photo`` grown by ``margins``, filled by what won Expand on held-out photos (the edge colour without
    ``choices``), the step)."""
    choice = (choices or {}).get("expand") or unmeasured(fills.EDGE_COLOUR.name)
    return expand(photo, tuple(margins), choice, inpainter), step("expand", choice)
