from django.apps import AppConfig


class StorefrontConfig(AppConfig):
    name = "imagegen.storefront"
    # Not "storefront": a host may well have an app of that name.
    label = "imagegen_storefront"
    verbose_name = "Storefront personalization"
    default_auto_field = "django.db.models.BigAutoField"
    # imagegen.api.urls includes these routes under its own (same URLs and names as when they were the core's).
    imagegen_api_urls = "imagegen.storefront.urls"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from . import signals

        signals.connect()
