"""Reading the host's products through the IMAGEGEN_PRODUCT_* settings, never through its classes."""
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.apps import apps
from django.core.files.storage import Storage
from django.db.models import Model, QuerySet

from ..backends import get_backend
from ..conf import settings
from ..models import SourcePhoto


def product_model() -> type[Model]:
    """The host's product model named by IMAGEGEN_PRODUCT_MODEL."""
    return apps.get_model(settings.PRODUCT_MODEL)


def product_category(product: Model) -> str:
    """The category label a product is generated for ("" when it has none)."""
    value = product_model().objects.filter(pk=product.pk).values_list(settings.PRODUCT_CATEGORY_FIELD, flat=True)
    label = value.first()
    return "" if label is None else str(label)


def _join_text(values: Iterable) -> str:
    return " ".join(str(value) for value in values if value).strip()


def product_text(product: Model) -> str:
    """The product's own words (name, description ...), joined."""
    return _join_text(getattr(product, name, "") for name in settings.PRODUCT_TEXT_FIELDS)


def _clean_attributes(value) -> dict[str, str]:
    """The product's attributes as {name: text}; anything but a JSON object counts as none."""
    if not isinstance(value, dict):
        return {}
    return {str(key): str(item) for key, item in value.items() if item not in (None, "") and not isinstance(item, (dict, list))}


def product_attributes(product: Model) -> dict[str, str]:
    """Attributes (colour, material, pattern ...) from IMAGEGEN_PRODUCT_ATTRIBUTES_FIELD, {} without one."""
    field = settings.PRODUCT_ATTRIBUTES_FIELD
    return _clean_attributes(getattr(product, field, None)) if field else {}


@dataclass(frozen=True)
class ProductPhoto:
    product_id: int
    category: str
    name: str  # storage name of the file
    storage: Storage
    attributes: dict = field(default_factory=dict, hash=False, compare=False)
    text: str = ""

    def open(self):
        return self.storage.open(self.name, "rb")


def product_conditions(product: Model) -> dict:
    """What a generator conditions on for ``product``: category, attributes and text.

    A product without a colour attribute gets the dominant colour of its first readable photo (the
    same rule the training set uses), so its candidates match the photos it already has."""
    attributes = product_attributes(product)
    if "colour" not in attributes:
        for photo in product_photos([product.pk]):
            colour = photo_colour(photo)
            if colour:
                attributes["colour"] = colour
                break
    return {"category": product_category(product) or None, "attributes": attributes, "text": product_text(product)}


def photo_colour(photo: ProductPhoto) -> str | None:
    """The dominant colour name of a product photo, None when it cannot be read."""
    from .uploads import accepted_formats

    try:
        with photo.open() as fh:
            return get_backend().photo_colour(fh, accepted_formats())
    except (OSError, ValueError):
        return None


def field_at(model: type[Model], path: str):
    """The model field at the end of a lookup path such as "gallery__image"."""
    *relations, last = path.split("__")
    for name in relations:
        model = model._meta.get_field(name).related_model
    return model._meta.get_field(last)


def product_photos(products: QuerySet | Iterable[int]) -> Iterator[ProductPhoto]:
    """Every photo (primary image, then gallery, then the photos uploaded to imagegen as ``SourcePhoto``) of
    the given products, with its category label."""
    model = product_model()
    ids = products.values_list("pk", flat=True) if isinstance(products, QuerySet) else list(products)
    rows = model.objects.filter(pk__in=ids).order_by("pk")
    fields = [settings.PRODUCT_IMAGE_FIELD]
    if settings.PRODUCT_GALLERY_FIELD:
        fields.append(settings.PRODUCT_GALLERY_FIELD)
    described = {pk: (_clean_attributes(attrs), _join_text(texts)) for pk, attrs, *texts in rows.values_list(
        "pk", *([settings.PRODUCT_ATTRIBUTES_FIELD] if settings.PRODUCT_ATTRIBUTES_FIELD else ["pk"]),
        *settings.PRODUCT_TEXT_FIELDS,
    )}
    seen: set[tuple[int, str]] = set()
    for field_path in fields:
        storage = field_at(model, field_path).storage
        for pk, category, name in rows.values_list("pk", settings.PRODUCT_CATEGORY_FIELD, field_path):
            if not name or category is None or (pk, name) in seen:
                continue
            seen.add((pk, name))
            attributes, text = described[pk]
            yield ProductPhoto(
                product_id=pk, category=str(category), name=name, storage=storage, attributes=dict(attributes), text=text
            )
    categories: dict[int, str] = {}
    for pk, category in rows.values_list("pk", settings.PRODUCT_CATEGORY_FIELD):
        if category is not None:
            categories.setdefault(pk, str(category))
    storage = SourcePhoto._meta.get_field("image").storage
    uploaded = SourcePhoto.objects.filter(product_id__in=list(categories)).order_by("product_id", "created_at", "id")
    for pk, name in uploaded.values_list("product_id", "image"):
        if not name or (pk, name) in seen:
            continue
        seen.add((pk, name))
        attributes, text = described[pk]
        yield ProductPhoto(
            product_id=pk, category=categories[pk], name=name, storage=storage, attributes=dict(attributes), text=text
        )


def select_products(
    *, categories: list[str] | None = None, ids: list[int] | None = None, per_category: int | None = None
) -> QuerySet:
    """Products filtered by category labels and/or ids (all when neither is given), optionally only the
    first ``per_category`` of each category by id."""
    products = product_model().objects.all()
    if categories:
        products = products.filter(**{f"{settings.PRODUCT_CATEGORY_FIELD}__in": categories})
    if ids:
        products = products.filter(pk__in=ids)
    if per_category:
        taken: dict[str, int] = {}
        keep = []
        for pk, category in products.order_by("pk").values_list("pk", settings.PRODUCT_CATEGORY_FIELD):
            if taken.get(category, 0) < per_category:
                taken[category] = taken.get(category, 0) + 1
                keep.append(pk)
        products = products.filter(pk__in=keep)
    return products.order_by("pk")
