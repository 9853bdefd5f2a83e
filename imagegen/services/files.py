"""Writing files to storage together with database rows: all of them or none."""
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO

from django.core.files.base import ContentFile
from django.core.files.storage import Storage
from django.db import transaction
from django.db.models.fields.files import FieldFile
from PIL import Image

logger = logging.getLogger(__name__)


def png_file(image: Image.Image, xmp: str | None = None) -> ContentFile:
    """PNG bytes of ``image``, with an XMP packet (provenance) when given."""
    from PIL.PngImagePlugin import PngInfo

    from .provenance import PNG_XMP_KEY

    info = PngInfo()
    if xmp:
        info.add_itxt(PNG_XMP_KEY, xmp)
    buf = BytesIO()
    image.save(buf, format="PNG", optimize=True, pnginfo=info)
    return ContentFile(buf.getvalue())


class FileBatch:
    """Collects the files written inside an ``atomic_files()`` block so they can be removed again."""

    def __init__(self) -> None:
        self._written: list[tuple[Storage, str]] = []

    def save(self, field_file: FieldFile, filename: str, content: ContentFile) -> None:
        field_file.save(filename, content, save=False)
        self._written.append((field_file.storage, field_file.name))

    def save_to(self, storage: Storage, name: str, content: ContentFile) -> str:
        """Store ``content`` under ``name`` (or the free name the storage picks instead), outside any field."""
        stored = storage.save(name, content)
        self._written.append((storage, stored))
        return stored

    def delete_all(self) -> None:
        # Best effort for every file: a storage that fails one delete must neither leave the others behind
        # nor replace the error that rolled the transaction back.
        for storage, name in self._written:
            try:
                storage.delete(name)
            except Exception:
                logger.exception("could not remove %s after a rollback; it is an orphan now", name)


@contextmanager
def atomic_files() -> Iterator[FileBatch]:
    """A database transaction whose stored files are deleted again if it rolls back."""
    batch = FileBatch()
    try:
        with transaction.atomic():
            yield batch
    except BaseException:
        batch.delete_all()
        raise
