"""Reading a product's photo for training or for making backdrops: decoded under the upload rules (the shop's
own photos never passed our checks) and shrunk, or the reason it cannot be read."""
from django.core.exceptions import ValidationError

from .uploads import decode_photo


def read_product_photo(photo, max_side: int):
    """(the ``products.ProductPhoto`` decoded and shrunk to ``max_side``, None) or (None, "name: reason")."""
    try:
        with photo.open() as fh:
            image, _format = decode_photo(fh.read())
    except ValidationError as exc:
        return None, f"{photo.name}: {' '.join(exc.messages)}"
    except OSError as exc:
        return None, f"{photo.name}: {exc}"
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side))
    return image, None
