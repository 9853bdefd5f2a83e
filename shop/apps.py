"""App configuration of the demo shop."""
from django.apps import AppConfig


class ShopConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "shop"
    verbose_name = "Shop"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
