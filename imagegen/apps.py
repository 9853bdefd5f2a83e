from django.apps import AppConfig


class ImagegenConfig(AppConfig):
    name = "imagegen"
    verbose_name = "Image generation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from . import signals

        signals.connect()
