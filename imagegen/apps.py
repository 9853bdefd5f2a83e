from django.apps import AppConfig


class ImagegenConfig(AppConfig):
    name = "imagegen"
    verbose_name = "Image generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, operation_checks  # noqa: F401  (register the system checks)
        from . import services  # noqa: F401  (its work modules register their job runners)
        from .services import cleanup

        cleanup.connect()
