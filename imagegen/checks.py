"""Configuration mistakes reported by Django's system checks (``manage.py check``), with stable ids."""
import os

from django.apps import apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist

from .backends import get_backend
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
def check_training_limits(app_configs=None, **kwargs):
    soft, hard = settings.TRAIN_TASK_SOFT_TIME_LIMIT, settings.TRAIN_TASK_TIME_LIMIT
    if soft >= hard:
        return [checks.Error(
            "IMAGEGEN_TRAIN_TASK_SOFT_TIME_LIMIT must be below IMAGEGEN_TRAIN_TASK_TIME_LIMIT.",
            hint="The soft limit lets a training job record why it stopped before the hard limit kills it.",
            id="imagegen.E050",
        )]
    warnings = []
    budget = settings.TRAIN_MAX_MINUTES
    if budget is not None and budget * 60 >= soft:
        warnings.append(checks.Warning(
            f"IMAGEGEN_TRAIN_MAX_MINUTES ({budget} min) reaches IMAGEGEN_TRAIN_TASK_SOFT_TIME_LIMIT ({soft} s): "
            "training jobs are stopped by the time limit before their own time budget ends.",
            hint="Lower the budget, or raise the training task limits (and the broker's visibility timeout).",
            id="imagegen.W020",
        ))
    visibility = _visibility_timeout()
    if visibility is not None and hard >= visibility:
        warnings.append(checks.Warning(
            f"IMAGEGEN_TRAIN_TASK_TIME_LIMIT ({hard} s) is not below the broker's visibility timeout ({visibility} s).",
            hint="The broker then hands a training job's message to a second worker while the job still runs; the "
            "job row keeps it from running twice, but that worker is held up. Raise "
            "broker_transport_options['visibility_timeout'] above the training time limit.",
            id="imagegen.W021",
        ))
    return warnings


def backend_or_none():
    """The configured backend, or None when IMAGEGEN_BACKEND cannot be loaded (check_backend says why)."""
    try:
        return get_backend()
    except Exception:
        return None


@checks.register()
def check_backend(app_configs=None, **kwargs):
    try:
        get_backend()
    except Exception as exc:
        return [checks.Error(
            f"IMAGEGEN_BACKEND {settings.BACKEND!r} cannot be loaded: {type(exc).__name__}: {exc}",
            hint="Name a class by its dotted path; the default is imagegen.backends.torch.TorchBackend.",
            id="imagegen.E080",
        )]
    return []


@checks.register()
def check_kinds(app_configs=None, **kwargs):
    backend = backend_or_none()
    if backend is None:
        return []
    known = backend.generator_kinds()
    errors = []
    for kind in settings.KINDS:
        if kind not in known:
            errors.append(
                checks.Error(
                    f"IMAGEGEN_KINDS names {kind!r}, which mlcore does not provide.",
                    hint=f"Known kinds: {', '.join(sorted(known))}.",
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


@checks.register()
def check_uploads(app_configs=None, **kwargs):
    from PIL import Image, ImageFile

    errors = []
    Image.init()
    for name in settings.UPLOAD_FORMATS:
        if str(name).upper() not in Image.OPEN:
            errors.append(
                checks.Error(
                    f"IMAGEGEN_UPLOAD_FORMATS names {name!r}, which is not a format Pillow can read.",
                    hint="Use Pillow's format names, e.g. 'JPEG' (not 'JPG'), 'PNG', 'WEBP', 'GIF'.",
                    id="imagegen.E011",
                )
            )
        elif str(name).upper() == "EPS":
            errors.append(
                checks.Error(
                    "IMAGEGEN_UPLOAD_FORMATS must not include EPS: Pillow decodes it by running Ghostscript on "
                    "the uploaded PostScript program.",
                    id="imagegen.E012",
                )
            )
    limits = (settings.UPLOAD_MAX_BYTES, settings.UPLOAD_MAX_PIXELS, settings.UPLOAD_MIN_SIDE)
    if not all(isinstance(value, int) and value > 0 for value in limits) or (
        settings.UPLOAD_MIN_SIDE**2 > settings.UPLOAD_MAX_PIXELS
    ):
        errors.append(
            checks.Error(
                "IMAGEGEN_UPLOAD_MAX_BYTES, IMAGEGEN_UPLOAD_MAX_PIXELS and IMAGEGEN_UPLOAD_MIN_SIDE must be positive "
                "whole numbers, and a square of IMAGEGEN_UPLOAD_MIN_SIDE must fit in IMAGEGEN_UPLOAD_MAX_PIXELS.",
                id="imagegen.E013",
            )
        )
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        errors.append(
            checks.Warning(
                "PIL.ImageFile.LOAD_TRUNCATED_IMAGES is on: truncated uploads are accepted with their missing part "
                "filled in grey instead of being refused.",
                hint="Something in this process set it; imagegen never does.",
                id="imagegen.W001",
            )
        )
    return errors


@checks.register()
def check_api_limits(app_configs=None, **kwargs):
    from rest_framework.throttling import SimpleRateThrottle

    def bad_rates(setting: str, rates: dict, scopes: set | None, error_id: str) -> list:
        found = []
        for scope, rate in (rates or {}).items():
            try:
                if scopes is not None and scope not in scopes:
                    raise KeyError(scope)
                if rate is not None:
                    SimpleRateThrottle.parse_rate(None, rate)
            except (ValueError, KeyError, AttributeError, TypeError):
                found.append(
                    checks.Error(
                        f"IMAGEGEN_{setting}[{scope!r}] is {rate!r}, which is not a rate"
                        + (f" of one of the scopes {', '.join(sorted(scopes))}." if scopes else "."),
                        hint='Write "<number>/<second|minute|hour|day>", e.g. "60/minute", or None for no limit.',
                        id=error_id,
                    )
                )
        return found

    errors = [
        *bad_rates("THROTTLE_RATES", settings.THROTTLE_RATES, None, "imagegen.E014"),
        *bad_rates("LOGIN_FAILURE_RATES", settings.LOGIN_FAILURE_RATES, {"address", "username"}, "imagegen.E040"),
    ]
    cap = settings.MAX_ACTIVE_JOBS_PER_USER
    if cap is not None and not (isinstance(cap, int) and not isinstance(cap, bool) and cap >= 1):
        errors.append(
            checks.Error("IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER must be a whole number >= 1, or None.", id="imagegen.E015")
        )
    return errors


@checks.register()
def check_worker_settings(app_configs=None, **kwargs):
    count = settings.LOADED_MODELS_PER_PROCESS
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        return [
            checks.Error(
                "IMAGEGEN_LOADED_MODELS_PER_PROCESS must be a whole number >= 1.",
                hint="A worker process must keep at least the model of the job it runs.",
                id="imagegen.E027",
            )
        ]
    return []


@checks.register()
def check_training_checkpoints(app_configs=None, **kwargs):
    errors = []
    every = settings.TRAIN_CHECKPOINT_EVERY
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        errors.append(checks.Error("IMAGEGEN_TRAIN_CHECKPOINT_EVERY must be a whole number of steps >= 1.", id="imagegen.E024"))
    folder = settings.TRAIN_CHECKPOINT_DIR
    if folder is not None:
        if not isinstance(folder, (str, os.PathLike)) or not str(folder):
            errors.append(checks.Error("IMAGEGEN_TRAIN_CHECKPOINT_DIR must be a folder path or None.", id="imagegen.E025"))
        elif not os.path.isabs(folder):
            errors.append(checks.Error(
                "IMAGEGEN_TRAIN_CHECKPOINT_DIR must be an absolute path.",
                hint="Every training process (on every machine) must find the same file, whatever its working folder.",
                id="imagegen.E026",
            ))
    return errors


@checks.register()
def check_inference(app_configs=None, **kwargs):
    backend = backend_or_none()
    if backend is None:
        return []
    choices = backend.inference_choices()
    precisions, channels_last, compile_modes = choices["precision"], choices["channels_last"], choices["compile"]
    errors = []
    batch, wait = settings.INFERENCE_MAX_BATCH, settings.INFERENCE_BATCH_WAIT
    if not (isinstance(batch, int) and not isinstance(batch, bool) and batch >= 1) or not (
        isinstance(wait, (int, float)) and not isinstance(wait, bool) and 0 <= wait <= 10
    ):
        errors.append(checks.Error(
            f"IMAGEGEN_INFERENCE_MAX_BATCH must be a whole number >= 1 (it is {batch!r}) and "
            f"IMAGEGEN_INFERENCE_BATCH_WAIT a number of seconds from 0 to 10 (it is {wait!r}).",
            hint="IMAGEGEN_INFERENCE_MAX_BATCH = 1 switches batching off; the wait delays a lone job by as much.",
            id="imagegen.E018",
        ))
    if settings.INFERENCE_PRECISION not in precisions or settings.INFERENCE_CHANNELS_LAST not in channels_last:
        errors.append(checks.Error(
            f"IMAGEGEN_INFERENCE_PRECISION must be one of {', '.join(precisions)} (it is "
            f"{settings.INFERENCE_PRECISION!r}) and IMAGEGEN_INFERENCE_CHANNELS_LAST one of {', '.join(channels_last)} "
            f"(it is {settings.INFERENCE_CHANNELS_LAST!r}).",
            id="imagegen.E019",
        ))
    if settings.INFERENCE_COMPILE not in compile_modes:
        errors.append(checks.Error(
            f"IMAGEGEN_INFERENCE_COMPILE is {settings.INFERENCE_COMPILE!r}, not one of {', '.join(compile_modes)}.",
            hint="Leave it \"off\" unless bench/inference.py measures a mode faster on the workers' device.",
            id="imagegen.E020",
        ))
    return errors


@checks.register()
def check_bulk_settings(app_configs=None, **kwargs):
    def whole(value, least: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= least

    errors = []
    if not whole(settings.BULK_THRESHOLD, 0):
        errors.append(checks.Error("IMAGEGEN_BULK_THRESHOLD must be a whole number >= 0.", id="imagegen.E021"))
    if not (whole(settings.BULK_BATCH_SIZE, 1) and whole(settings.BULK_CHUNK_SIZE, 1)):
        errors.append(checks.Error(
            "IMAGEGEN_BULK_BATCH_SIZE and IMAGEGEN_BULK_CHUNK_SIZE must be whole numbers >= 1.",
            hint="A batch is the jobs of one run_jobs message; a chunk the jobs created per transaction.",
            id="imagegen.E022",
        ))
    cap = settings.MAX_ACTIVE_BULK_OPERATIONS_PER_USER
    if cap is not None and not whole(cap, 1):
        errors.append(checks.Error(
            "IMAGEGEN_MAX_ACTIVE_BULK_OPERATIONS_PER_USER must be a whole number >= 1, or None.", id="imagegen.E023"
        ))
    return errors


@checks.register()
def check_quality_gate_settings(app_configs=None, **kwargs):
    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    errors = []
    if not (number(settings.HELD_OUT_SHARE) and 0 <= settings.HELD_OUT_SHARE <= 0.5):
        errors.append(checks.Error(
            "IMAGEGEN_HELD_OUT_SHARE must be a number from 0 to 0.5.",
            hint="0 trains on every photo, but then the activation metrics can only measure the training photos.",
            id="imagegen.E028",
        ))
    if not (number(settings.NEAR_COPY_ALPHA) and 0 < settings.NEAR_COPY_ALPHA < 1):
        errors.append(checks.Error("IMAGEGEN_NEAR_COPY_ALPHA must be a number between 0 and 1.", id="imagegen.E029"))
    if not (number(settings.NEAR_COPY_PERCENTILE) and 0 < settings.NEAR_COPY_PERCENTILE < 100):
        errors.append(checks.Error("IMAGEGEN_NEAR_COPY_PERCENTILE must be a number between 0 and 100.", id="imagegen.E030"))
    every = settings.R1_EVERY
    if not (number(settings.R1_GAMMA) and settings.R1_GAMMA >= 0) or not (isinstance(every, int) and not isinstance(every, bool) and every >= 1):
        errors.append(checks.Error(
            "IMAGEGEN_R1_GAMMA must be a number >= 0 and IMAGEGEN_R1_EVERY a whole number of steps >= 1.", id="imagegen.E031"
        ))
    return errors


@checks.register(checks.Tags.security)
def check_client_address(app_configs=None, **kwargs):
    """Per-address limits (API, storefront, failed sign-ins) need to know which address to count."""
    from django.conf import settings as django_settings
    from rest_framework.settings import api_settings

    proxies = api_settings.NUM_PROXIES
    if proxies is not None and not (isinstance(proxies, int) and not isinstance(proxies, bool) and proxies >= 0):
        return [checks.Error("REST_FRAMEWORK['NUM_PROXIES'] must be a whole number >= 0 or None.", id="imagegen.E041")]
    if proxies is None and not django_settings.DEBUG:
        return [
            checks.Warning(
                "REST_FRAMEWORK['NUM_PROXIES'] is not set, so imagegen counts per-address limits on the socket's "
                "address and ignores X-Forwarded-For: behind a reverse proxy every client shares the proxy's limits.",
                hint="Set it to the number of reverse proxies in front of the app that append to X-Forwarded-For "
                "(0 when clients connect directly).",
                id="imagegen.W010",
            )
        ]
    return []
