"""Configuration mistakes reported by Django's system checks (``manage.py check``), with stable ids."""
from django.apps import apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist

from .conf import settings


def _product_model():
    try:
        return apps.get_model(settings.PRODUCT_MODEL, require_ready=False)
    except (ValueError, LookupError):
        return None


@checks.register()
def check_product_model(app_configs=None, **kwargs):
    model = _product_model()
    if model is None:
        return [
            checks.Error(
                f"IMAGEGEN_PRODUCT_MODEL refers to {settings.PRODUCT_MODEL!r}, which is not an installed model.",
                hint="Set it to 'app_label.ModelName' of your product model, like AUTH_USER_MODEL.",
                id="imagegen.E001",
            )
        ]
    errors = []
    try:
        model._meta.get_field(settings.PRODUCT_IMAGE_FIELD)
    except FieldDoesNotExist:
        errors.append(
            checks.Error(
                f"{model.__name__} has no field {settings.PRODUCT_IMAGE_FIELD!r} (IMAGEGEN_PRODUCT_IMAGE_FIELD).",
                id="imagegen.E002",
            )
        )
    for name in settings.PRODUCT_TEXT_FIELDS:
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:
            errors.append(
                checks.Error(
                    f"{model.__name__} has no field {name!r} (IMAGEGEN_PRODUCT_TEXT_FIELDS).", id="imagegen.E003"
                )
            )
    return errors


def _visibility_timeout() -> float | None:
    """The broker's visibility timeout of the project's Celery app (Redis and SQS have one), if set."""
    from celery import current_app

    options = current_app.conf.broker_transport_options or {}
    return options.get("visibility_timeout")


@checks.register()
def check_task_limits(app_configs=None, **kwargs):
    errors = []
    if settings.TASK_SOFT_TIME_LIMIT >= settings.TASK_TIME_LIMIT:
        errors.append(
            checks.Error(
                "IMAGEGEN_TASK_SOFT_TIME_LIMIT must be below IMAGEGEN_TASK_TIME_LIMIT.",
                hint="The soft limit lets a job record why it stopped before the hard limit kills it.",
                id="imagegen.E004",
            )
        )
    visibility = _visibility_timeout()
    if visibility is not None and settings.TASK_TIME_LIMIT >= visibility:
        errors.append(
            checks.Error(
                f"IMAGEGEN_TASK_TIME_LIMIT ({settings.TASK_TIME_LIMIT} s) must be below the broker's visibility "
                f"timeout ({visibility} s).",
                hint="Otherwise the broker hands a task that is still running to a second worker. Raise "
                "broker_transport_options['visibility_timeout'] or lower the time limit.",
                id="imagegen.E009",
            )
        )
    if not settings.JOB_LEASE_SECONDS > 0 or not (isinstance(settings.JOB_MAX_ATTEMPTS, int) and settings.JOB_MAX_ATTEMPTS >= 1):
        errors.append(
            checks.Error(
                "IMAGEGEN_JOB_LEASE_SECONDS must be positive and IMAGEGEN_JOB_MAX_ATTEMPTS a whole number >= 1.",
                id="imagegen.E010",
            )
        )
    return errors


@checks.register()
def check_kinds(app_configs=None, **kwargs):
    from mlcore.registry import KINDS

    errors = []
    for kind in settings.KINDS:
        if kind not in KINDS:
            errors.append(
                checks.Error(
                    f"IMAGEGEN_KINDS names {kind!r}, which mlcore does not provide.",
                    hint=f"Known kinds: {', '.join(sorted(KINDS))}.",
                    id="imagegen.E005",
                )
            )
    if settings.DEFAULT_KIND not in settings.KINDS:
        errors.append(checks.Error("IMAGEGEN_DEFAULT_KIND must be one of IMAGEGEN_KINDS.", id="imagegen.E006"))
    if settings.IMAGE_SIZE not in (64, 128):
        errors.append(checks.Error("IMAGEGEN_IMAGE_SIZE must be 64 or 128.", id="imagegen.E007"))
    if settings.AUTO_ACTIVATE not in ("if-better", "always", "never"):
        errors.append(
            checks.Error("IMAGEGEN_AUTO_ACTIVATE must be 'if-better', 'always' or 'never'.", id="imagegen.E008")
        )
    return errors
