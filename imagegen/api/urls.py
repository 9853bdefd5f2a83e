"""The API's routes; a host includes them with ``path("api/", include("imagegen.api.urls"))``."""
from django.apps import apps
from django.urls import include, path

from . import bulk, editing, scenes, views

app_name = "imagegen-api"

urlpatterns = [
    path("products/<int:product_id>/generate/", views.ProductGenerateView.as_view(), name="product-generate"),
    path("products/<int:product_id>/images/", views.ProductImagesView.as_view(), name="product-images"),
    # One route per photo operation (products/<id>/<path>/, named product-<name>): services.operations.
    *editing.urlpatterns(),
    path("products/<int:product_id>/photos/", views.ProductPhotosView.as_view(), name="product-photos"),
    path("jobs/<int:pk>/", views.JobDetailView.as_view(), name="job-detail"),
    path("bulk/generate/", bulk.BulkGenerateView.as_view(), name="bulk-generate"),
    path("bulk/edit/", bulk.BulkEditView.as_view(), name="bulk-edit"),
    path("scene-sets/", scenes.SceneSetListView.as_view(), name="scene-set-list"),
    path("scene-sets/<int:pk>/", scenes.SceneSetDetailView.as_view(), name="scene-set-detail"),
    path("scene-sets/<int:pk>/photos/", scenes.SceneSetPhotosView.as_view(), name="scene-set-photos"),
    path("scene-sets/<int:pk>/train/", scenes.SceneSetTrainView.as_view(), name="scene-set-train"),
    path("bulk/<int:pk>/", bulk.BulkDetailView.as_view(), name="bulk-detail"),
    path("bulk/<int:pk>/cancel/", bulk.BulkCancelView.as_view(), name="bulk-cancel"),
    path("images/<int:pk>/", views.ImageDetailView.as_view(), name="image-detail"),
    path("images/<int:pk>/review/", views.ImageReviewView.as_view(), name="image-review"),
]

# Installed apps built on imagegen add their routes here, under the same prefix and names: the storefront
# (imagegen.storefront) names its urlconf in its AppConfig. The core imports none of them.
for config in apps.get_app_configs():
    if getattr(config, "imagegen_api_urls", None):
        urlpatterns.append(path("", include(config.imagegen_api_urls)))

if apps.is_installed("rest_framework.authtoken"):
    from .tokens import ObtainTokenView

    urlpatterns.append(path("auth/token/", ObtainTokenView.as_view(), name="auth-token"))
