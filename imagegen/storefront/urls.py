"""The storefront's API routes. imagegen's ``imagegen.api.urls`` includes them (``StorefrontConfig
.imagegen_api_urls``), so they keep their URLs and names (``imagegen-api:storefront-images`` ...) and a host
includes nothing more."""
from django.urls import path

from . import api

urlpatterns = [
    path("storefront/products/<int:product_id>/images/", api.StorefrontImagesView.as_view(), name="storefront-images"),
    path("storefront/events/", api.StorefrontEventsView.as_view(), name="storefront-events"),
    path("storefront/opt-out/", api.StorefrontOptOutView.as_view(), name="storefront-opt-out"),
]
