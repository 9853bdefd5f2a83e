"""Catalogue of the demo shop: categories, products and their photo galleries."""
from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=200)
    # Long enough for "<category>-<file stem>" slugs made by import_catalogue (UUID stems are 36 characters).
    slug = models.SlugField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    # PROTECT: deleting a category must not silently delete its products and their photos.
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    # Free-form facets such as {"colour": "red", "material": "cotton", "pattern": "plain"}; imagegen reads
    # them as conditioning labels, so they stay a flat dict of short strings by convention.
    attributes = models.JSONField(default=dict, blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    # The primary photo. 255 rather than Django's default 100 so long generated names are never truncated.
    image = models.ImageField(upload_to="products/%Y/%m/", max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # A total order, so paginated listings (admin, API) never repeat or drop a row.
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class ProductImage(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="gallery")
    image = models.ImageField(upload_to="products/gallery/%Y/%m/", max_length=255)
    alt = models.CharField(max_length=200, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return f"{self.product} – image {self.position}"
