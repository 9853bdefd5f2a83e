"""Catalogue photos stored without their metadata, as imagegen stores uploads: no EXIF (camera serial,
GPS position, the photographer's name), XMP, IPTC or comments reach the shop's storage and its visitors.

The format is kept (a JPEG stays a JPEG: re-encoding a catalogue as PNG would multiply its storage and
every storefront download), the colour profile is kept, and a rotated photo is turned upright first,
since the orientation tag goes with the rest.
"""
from __future__ import annotations

import io

from PIL import Image, ImageOps

from .image_check import WEB_FORMATS

# Pillow's encoder options that write nothing but the picture (and its colour profile, passed separately).
_SAVE_OPTIONS = {
    "JPEG": {"optimize": True},
    "PNG": {"optimize": True},
    "WEBP": {"lossless": False, "quality": 95, "method": 4},
    "GIF": {},
}


def without_metadata(data: bytes) -> bytes:
    """``data`` (a checked image of one of WEB_FORMATS) re-written with the picture and colour profile only."""
    with Image.open(io.BytesIO(data), formats=list(WEB_FORMATS)) as image:
        image_format = image.format
        icc_profile = image.info.get("icc_profile")
        transparency = image.info.get("transparency")
        options = dict(_SAVE_OPTIONS[image_format])
        turned = image.getexif().get(0x0112, 1) not in (1, None)
        upright = ImageOps.exif_transpose(image) if turned else image
        # Pillow's encoders copy comments, XMP and the like from ``info``; nothing of it goes.
        upright.info = {}
        if image_format == "JPEG" and not turned:
            # Same quantisation tables and subsampling: the re-encoded picture is as close to the original as
            # JPEG allows. A photo that had to be turned upright is a new picture and gets a high quality.
            options.update(quality="keep", subsampling="keep")
        elif image_format == "JPEG":
            options.update(quality=95)
        elif image_format == "GIF" and transparency is not None:
            options["transparency"] = transparency
        if icc_profile:
            options["icc_profile"] = icc_profile
        out = io.BytesIO()
        upright.save(out, format=image_format, **options)
    return out.getvalue()
