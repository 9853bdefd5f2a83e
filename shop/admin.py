"""Admin pages for the shop's catalogue."""
from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from imagegen.admin import ImagegenProductAdminMixin

from .models import Category, Product, ProductImage


def _image_tag(file, height: int) -> str:
    """An <img> for a stored image, or a dash when there is none."""
    if not file:
        return "–"
    return format_html(
        '<img src="{}" alt="" style="height:{}px;width:auto;object-fit:contain;border-radius:2px">',
        file.url,
        height,
    )


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "product_count")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Category]:
        # One annotated query instead of a COUNT per row in the change list.
        return super().get_queryset(request).annotate(_product_count=Count("products"))

    @admin.display(description="products", ordering="_product_count")
    def product_count(self, obj: Category) -> int:
        return obj._product_count


class ProductImageInline(admin.TabularInline):
    model = ProductImage
    extra = 0
    fields = ("preview", "image", "alt", "position")
    readonly_fields = ("preview",)

    @admin.display(description="preview")
    def preview(self, obj: ProductImage) -> str:
        return _image_tag(obj.image, 64)


@admin.register(Product)
class ProductAdmin(ImagegenProductAdminMixin, admin.ModelAdmin):
    """The catalogue's products, with imagegen's actions and generated-image inline mixed in."""

    list_display = ("thumbnail", "name", "category", "price", "updated_at")
    list_display_links = ("thumbnail", "name")
    list_filter = ("category",)
    list_select_related = ("category",)
    search_fields = ("name", "description", "slug")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("thumbnail_preview", "created_at", "updated_at")
    fields = (
        "name",
        "slug",
        "category",
        "description",
        "price",
        "attributes",
        "image",
        "thumbnail_preview",
        "created_at",
        "updated_at",
    )
    inlines = [ProductImageInline]

    @admin.display(description="image")
    def thumbnail(self, obj: Product) -> str:
        return _image_tag(obj.image, 40)

    @admin.display(description="preview")
    def thumbnail_preview(self, obj: Product) -> str:
        return _image_tag(obj.image, 200)
