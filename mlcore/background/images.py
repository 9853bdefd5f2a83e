"""Bring whatever PIL image a caller hands in to what the background code works on: upright 8-bit RGB
plus, when it has a real one, its alpha channel.

Every public function of this package goes through :func:`prepare`, so a mask made by
``Segmenter.mask`` always fits the image that ``compose.on_background`` is given, whatever its mode
or EXIF orientation. The Django side already normalises uploads (CMYK with its profile, 16 bit, EXIF);
this is the second line: modes are converted where the meaning is clear and refused with a
``ValueError`` that says why where it is not.
"""

from __future__ import annotations

import torch
from PIL import Image, ImageOps
from torchvision.transforms.functional import pil_to_tensor

# Modes that carry transparency, and the mode they are read as.
_ALPHA_MODES = {"RGBA": "RGBA", "LA": "RGBA", "PA": "RGBA", "RGBa": "RGBA", "La": "RGBA"}
# Modes Pillow converts to RGB with a well-defined meaning. CMYK goes through Pillow's profile-free
# formula: fine for a preview, a little off in colour (the Django side converts with the ICC profile).
_COLOUR_MODES = ("RGB", "L", "1", "P", "CMYK", "YCbCr", "LAB", "HSV", "RGBX")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_SIXTEEN_BIT_MAX = 65535


def _check_image(image: object) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise ValueError(f"expected a PIL image, got {type(image).__name__}")
    if image.width < 1 or image.height < 1:
        raise ValueError(f"image has no pixels ({image.width} x {image.height})")
    try:
        image.load()
    except (OSError, SyntaxError, EOFError) as exc:
        raise ValueError(f"image data is corrupt or truncated: {exc}") from exc
    return image


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says (phones store portrait shots on their side).

    Idempotent: the orientation tag is dropped once applied, so an image the caller already turned
    is returned as it is."""
    image = _check_image(image)
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot apply the image's EXIF orientation: {exc}") from exc


def _sixteen_bit_to_rgb(image: Image.Image) -> Image.Image:
    # Pillow keeps 16-bit greyscale as integer modes; "L" conversion would clip at 255 instead of
    # scaling, so scale 0..65535 to 0..255 ourselves.
    values = pil_to_tensor(image.convert("I")).to(torch.int64)
    if int(values.min()) < 0 or int(values.max()) > _SIXTEEN_BIT_MAX:
        raise ValueError(
            f"mode {image.mode} image has values outside 0..{_SIXTEEN_BIT_MAX}; only 8- and 16-bit images are supported"
        )
    grey = torch.div(values * 255 + _SIXTEEN_BIT_MAX // 2, _SIXTEEN_BIT_MAX, rounding_mode="floor").to(torch.uint8)
    return Image.frombytes("L", image.size, grey[0].numpy().tobytes()).convert("RGB")


def prepare(image: Image.Image) -> tuple[Image.Image, Image.Image | None]:
    """(upright 8-bit RGB image, its alpha as mode "L" or ``None``).

    The alpha is ``None`` when the image has none or when it is fully opaque (an RGBA export of an
    ordinary photo), so callers can treat "has alpha" as "is already cut out". Palette images with a
    transparent colour count as having alpha. ``ValueError`` for floating-point images (no defined
    range), integer images outside 16 bits, corrupt data and modes Pillow cannot turn into RGB.
    """
    image = upright(image)
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        mode = "PA"
        image = image.convert("RGBA")
    if mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        alpha = rgba.getchannel("A")
        lowest, _ = alpha.getextrema()
        return rgba.convert("RGB"), (alpha if lowest < 255 else None)
    if mode in _SIXTEEN_BIT_MODES:
        return _sixteen_bit_to_rgb(image), None
    if mode == "F":
        raise ValueError(
            "floating-point (mode F) images have no defined brightness range; convert to 8 or 16 bit first"
        )
    if mode not in _COLOUR_MODES:
        raise ValueError(f"unsupported image mode {mode!r}; use RGB, RGBA, L, LA, P, CMYK or 16-bit greyscale")
    try:
        return image.convert("RGB"), None
    except (ValueError, OSError) as exc:
        raise ValueError(f"cannot convert a mode {mode!r} image to RGB: {exc}") from exc


def to_tensor(image: Image.Image) -> torch.Tensor:
    """An "RGB" or "L" PIL image as a uint8 C x H x W tensor."""
    return pil_to_tensor(image)


def mask_to_image(alpha: torch.Tensor) -> Image.Image:
    """A float H x W alpha in [0, 1] as a mode "L" image (rounded to the nearest of 0..255)."""
    pixels = alpha.detach().float().clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).cpu()
    return Image.frombytes("L", (pixels.shape[1], pixels.shape[0]), pixels.numpy().tobytes())


def mask_from_image(mask: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """A caller's mask ("L", "1", "LA", "RGBA"'s alpha...) of the given (width, height) as float H x W in [0, 1].

    EXIF orientation is applied as for the image it belongs to; ``ValueError`` when it does not fit."""
    mask = upright(mask)
    if mask.mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        mask = mask.convert("RGBA").getchannel("A")
    elif mask.mode in _SIXTEEN_BIT_MODES:
        mask = _sixteen_bit_to_rgb(mask).convert("L")
    elif mask.mode == "F":
        values = pil_to_tensor(mask)[0].float()
        if values.min() < 0 or values.max() > 1:
            raise ValueError("a mode F mask must hold values in [0, 1]")
        return _fit(values, mask.size, size)
    else:
        try:
            mask = mask.convert("L")
        except (ValueError, OSError) as exc:
            raise ValueError(f"cannot read a mode {mask.mode!r} image as a mask: {exc}") from exc
    return _fit(pil_to_tensor(mask)[0].float() / 255.0, mask.size, size)


def _fit(values: torch.Tensor, have: tuple[int, int], want: tuple[int, int]) -> torch.Tensor:
    if tuple(have) != tuple(want):
        raise ValueError(
            f"mask is {have[0]} x {have[1]} but the image is {want[0]} x {want[1]} (after EXIF orientation)"
        )
    return values
