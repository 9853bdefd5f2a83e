"""A second host project for imagegen, unlike the demo shop: its product is an ``Item`` in a ``Collection``,
with a ``photo`` and a ``title``. The suite migrates it from zero and runs a generate job on it, so imagegen
cannot come to depend on the demo shop's app or field names."""
from django.apps import AppConfig


class OtherHostConfig(AppConfig):
    name = "tests.other_host"
    label = "catalog"
    default_auto_field = "django.db.models.BigAutoField"
