"""The API's routes; a host includes them with ``path("api/", include("imagegen.api.urls"))``."""
from django.apps import apps
from django.urls import path

from . import bulk, editing, storefront, views

app_name = "imagegen-api"

urlpatterns = [
    path("products/<int:product_id>/generate/", views.ProductGenerateView.as_view(), name="product-generate"),
    path("products/<int:product_id>/images/", views.ProductImagesView.as_view(), name="product-images"),
    path("products/<int:product_id>/enhance/", editing.ProductEnhanceView.as_view(), name="product-enhance"),
    path("products/<int:product_id>/background/", editing.ProductBackgroundView.as_view(), name="product-background"),
    path("products/<int:product_id>/repair/", editing.ProductRepairView.as_view(), name="product-repair"),
    path("products/<int:product_id>/brand-look/", editing.ProductBrandLookView.as_view(), name="product-brandlook"),
    path("products/<int:product_id>/photos/", views.ProductPhotosView.as_view(), name="product-photos"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("bulk/generate/", bulk.BulkGenerateView.as_view(), name="bulk-generate"),
    path("bulk/<int:pk>/", bulk.BulkDetailView.as_view(), name="bulk-detail"),
    path("bulk/<int:pk>/cancel/", bulk.BulkCancelView.as_view(), name="bulk-cancel"),
    path("images/<int:pk>/", views.ImageDetailView.as_view(), name="image-detail"),
    path("images/<int:pk>/review/", views.ImageReviewView.as_view(), name="image-review"),
    path(
        "storefront/products/<int:product_id>/images/", storefront.StorefrontImagesView.as_view(),
        name="storefront-images",
    ),
    path("storefront/events/", storefront.StorefrontEventsView.as_view(), name="storefront-events"),
    path("storefront/opt-out/", storefront.StorefrontOptOutView.as_view(), name="storefront-opt-out"),
]

if apps.is_installed("rest_framework.authtoken"):
    from .tokens import ObtainTokenView

    urlpatterns.append(path("auth/token/", ObtainTokenView.as_view(), name="auth-token"))
