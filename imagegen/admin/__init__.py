"""imagegen's admin: its own pages (jobs, images, model versions, uploaded source photos) and the pieces a
host adds to its product admin (``ImagegenProductAdminMixin``)."""
from .bulk import BulkOperationAdmin
from .images import GeneratedImageAdmin, GeneratedImageInline
from .jobs import JobAdmin
from .photos import SourcePhotoAdmin
from .product import ImagegenProductAdminMixin
from .scenes import SceneSetAdmin
from .versions import ModelVersionAdmin

__all__ = ["BulkOperationAdmin", "GeneratedImageAdmin", "GeneratedImageInline", "ImagegenProductAdminMixin", "JobAdmin", "ModelVersionAdmin", "SceneSetAdmin",
           "SourcePhotoAdmin"]
