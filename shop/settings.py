"""Settings of the demo shop.

Everything that differs between a laptop, CI and production comes from the environment:
DATABASE_URL (default: SQLite under var/), REDIS_URL (default: none, tasks run in-process),
MEDIA_ROOT, SECRET_KEY, DEBUG, ALLOWED_HOSTS and, for S3 storage, IMAGEGEN_S3_BUCKET.
"""
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

# Off unless asked for: `make demo`, `make serve` and the tests' settings ask for what they need.
DEBUG = os.environ.get("DEBUG", "0") == "1"
# Published in this repository, so it signs nothing outside a DEBUG demo: with DEBUG off the system check
# shop.E001 refuses it (and with it every manage.py command, migrate included).
PUBLISHED_SECRET_KEY = "insecure-demo-key-set-SECRET_KEY-in-production"
SECRET_KEY = os.environ.get("SECRET_KEY") or PUBLISHED_SECRET_KEY
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # API tokens (README "API"): clients send `Authorization: Token <key>` instead of a password.
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "shop",
    "imagegen",
    # Storefront personalization (optional: imagegen works without it).
    "imagegen.storefront",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's and the API docs' static files under gunicorn too, with no extra web server.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "shop.middleware.DropMalformedSessionCookie",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Over HTTPS unless told otherwise (HTTPS=0: a local stack over plain http); on by default when DEBUG is off.
HTTPS = os.environ.get("HTTPS", "0" if DEBUG else "1") == "1"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS
# Start modest: a browser remembers HSTS for this long and refuses plain http to the host meanwhile.
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", 30 * 24 * 3600 if HTTPS else 0))
# The container health check asks over plain http from inside the container.
SECURE_REDIRECT_EXEMPT = [r"^healthz/$"]
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (it must overwrite what clients send).
if os.environ.get("TRUST_X_FORWARDED_PROTO") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=int(os.environ.get("CONN_MAX_AGE", 0)),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
# Let Django serve uploaded and generated files itself (the demo, tests); production uses a web server or S3.
SERVE_MEDIA = os.environ.get("SERVE_MEDIA", "1" if DEBUG else "0") == "1"

# Local files by default; S3 (or any S3-compatible server) through django-storages when a bucket is named.
if os.environ.get("IMAGEGEN_S3_BUCKET"):
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["IMAGEGEN_S3_BUCKET"],
            "endpoint_url": os.environ.get("AWS_S3_ENDPOINT_URL") or None,
            "default_acl": "private",
            "querystring_auth": True,
            # botocore would sign URLs with the deprecated SigV2 in us-east-1; SigV4 binds the expiry into
            # the signature and is the only scheme newer regions and most S3-compatible servers accept.
            "signature_version": "s3v4",
            # Seconds a signed URL stays valid (SigV4 allows up to 7 days).
            "querystring_expire": int(os.environ.get("AWS_QUERYSTRING_EXPIRE", 3600)),
            "file_overwrite": False,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Celery. With REDIS_URL the tasks go to Redis and a worker runs them (`celery -A shop worker -Q gpu`).
# Without it (the embedded default used by `make demo`) tasks run in-process, so nothing but Python is
# needed; the job rows and services are the same either way.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# The job row is the result store; Celery's own results would be a second, stale copy.
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Must exceed IMAGEGEN_TASK_TIME_LIMIT and IMAGEGEN_TRAIN_TASK_TIME_LIMIT (a day), or Redis hands a still-running
# late-acked task to a second worker. A message a dead worker left unacknowledged waits this long, but the
# reconciler sends its job again as soon as the job's lease runs out.
# A short connect timeout: a web request that enqueues a job must not hang on an unreachable broker (the
# job is stored anyway and the reconciler sends it later).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", 25 * 3600)),
    "socket_connect_timeout": 3,
    "socket_timeout": 10,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# `celery -A shop beat` (one per deployment) runs the reconciler that re-sends lost jobs, writes the
# buffered storefront events and keeps the shopper segments and their variants up to date; a worker on
# the "default" queue runs them.
CELERY_BEAT_SCHEDULE = {
    "imagegen-reconcile-jobs": {"task": "imagegen.reconcile_jobs", "schedule": 60.0, "options": {"queue": "default"}},
    "imagegen-flush-events": {"task": "imagegen.flush_events", "schedule": 2.0, "options": {"queue": "default"}},
    "imagegen-assign-shoppers": {"task": "imagegen.assign_shoppers", "schedule": 60.0, "options": {"queue": "default"}},
    "imagegen-refresh-segments": {"task": "imagegen.refresh_segments", "schedule": 3600.0, "options": {"queue": "default"}},
    # Storefront events older than IMAGEGEN_EVENT_RETENTION_DAYS go.
    "imagegen-purge-events": {"task": "imagegen.purge_events", "schedule": 86400.0, "options": {"queue": "default"}},
}
# Storefront events go through a Redis list and are written in bulk (imagegen.flush_events).
IMAGEGEN_EVENT_BUFFER_URL = REDIS_URL or None

# API rate limits count in the default cache: with more than one web process it must be shared (Redis),
# or every process keeps its own counts.
if os.environ.get("CACHE_URL"):
    CACHES = {"default": {"BACKEND": "imagegen.cache.RedisCache", "LOCATION": os.environ["CACHE_URL"]}}

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
        # DRF's, with failed attempts counted and refused (429) once too many, before the password is hashed.
        "imagegen.api.authentication.BasicAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # imagegen's views declare their own throttles; these cover the rest (the schema and its docs).
    "DEFAULT_THROTTLE_CLASSES": ["imagegen.api.throttles.PerUserThrottle", "imagegen.api.throttles.PerIPThrottle"],
    # Reverse proxies in front of the app that append to X-Forwarded-For (0: clients connect directly).
    # Unset, per-address limits count the socket's address and never read the header (a client could
    # write any address there); the check imagegen.W010 asks a non-DEBUG site to say.
    "NUM_PROXIES": int(os.environ["NUM_PROXIES"]) if os.environ.get("NUM_PROXIES") else None,
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "imagegen demo shop API",
    "DESCRIPTION": "Generate product images trained on the shop's own catalogue.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files are served from this server (drf-spectacular-sidecar), not from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# imagegen: the host's product model and where its images and texts live (see imagegen/conf.py).
IMAGEGEN_PRODUCT_MODEL = "shop.Product"
IMAGEGEN_PRODUCT_IMAGE_FIELD = "image"
IMAGEGEN_PRODUCT_GALLERY_FIELD = "gallery__image"
IMAGEGEN_PRODUCT_CATEGORY_FIELD = "category__slug"
IMAGEGEN_PRODUCT_TEXT_FIELDS = ("name", "description")
IMAGEGEN_PRODUCT_ATTRIBUTES_FIELD = "attributes"
IMAGEGEN_JOB_LEASE_SECONDS = int(os.environ.get("IMAGEGEN_JOB_LEASE_SECONDS", 120))
IMAGEGEN_RECONCILE_QUEUED_AFTER = int(os.environ.get("IMAGEGEN_RECONCILE_QUEUED_AFTER", 120))
# Queue names per kind of work (README "Workers"); a worker's -Q option names the ones it consumes.
IMAGEGEN_QUEUE = os.environ.get("IMAGEGEN_QUEUE", "gpu")
IMAGEGEN_TRAIN_QUEUE = os.environ.get("IMAGEGEN_TRAIN_QUEUE", "train")
IMAGEGEN_WARM_MODELS = os.environ.get("IMAGEGEN_WARM_MODELS", "") in ("1", "true", "yes")
if os.environ.get("IMAGEGEN_DEVICE"):
    IMAGEGEN_DEVICE = os.environ["IMAGEGEN_DEVICE"]
# Images one forward pass of a generate worker may hold (cross-job batching); 1 switches gathering off.
if os.environ.get("IMAGEGEN_INFERENCE_MAX_BATCH"):
    IMAGEGEN_INFERENCE_MAX_BATCH = int(os.environ["IMAGEGEN_INFERENCE_MAX_BATCH"])
# A folder all training machines share, so restarted (distributed) training continues from its checkpoint.
if os.environ.get("IMAGEGEN_TRAIN_CHECKPOINT_DIR"):
    IMAGEGEN_TRAIN_CHECKPOINT_DIR = os.environ["IMAGEGEN_TRAIN_CHECKPOINT_DIR"]
IMAGEGEN_TRAIN_CHECKPOINT_EVERY = int(os.environ.get("IMAGEGEN_TRAIN_CHECKPOINT_EVERY", 200))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"imagegen": {"handlers": ["console"], "level": os.environ.get("IMAGEGEN_LOG_LEVEL", "INFO")}},
}
