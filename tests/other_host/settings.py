"""Settings of the second test host (see apps.py): no `shop` app anywhere."""
import os
from pathlib import Path

import dj_database_url

SECRET_KEY = os.environ.get("SECRET_KEY", "other-host-test-key-not-for-any-site-5b1e0c7d")
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "tests.other_host",
    "imagegen",
]
# Storefront personalization is left out, as a host may; tests/test_other_host.py installs it later
# (OTHER_HOST_STOREFRONT=1) on the same database.
if os.environ.get("OTHER_HOST_STOREFRONT"):
    INSTALLED_APPS.append("imagegen.storefront")
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.other_host.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {"default": dj_database_url.config()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
MEDIA_ROOT = Path(os.environ["MEDIA_ROOT"])
MEDIA_URL = "/media/"
STATIC_URL = "static/"
REST_FRAMEWORK = {"NUM_PROXIES": 0}
# No broker: jobs run in the process that makes them (as the demo's management commands do).
CELERY_TASK_ALWAYS_EAGER = True

IMAGEGEN_PRODUCT_MODEL = "catalog.Item"
IMAGEGEN_PRODUCT_IMAGE_FIELD = "photo"
IMAGEGEN_PRODUCT_CATEGORY_FIELD = "collection__code"
IMAGEGEN_PRODUCT_TEXT_FIELDS = ("title", "blurb")
IMAGEGEN_DEVICE = "cpu"
IMAGEGEN_DECODED_PHOTO_CACHE_MAX_MB = 0
