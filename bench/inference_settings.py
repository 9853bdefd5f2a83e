"""The demo shop's settings for the inference benchmark (bench/inference.py): production-like (DEBUG off,
persistent database connections), and no API limits in the way of one client submitting many jobs. Each run
of workers sets IMAGEGEN_INFERENCE_MAX_BATCH in its environment (read by shop/settings.py)."""
import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("CONN_MAX_AGE", "60")

from shop.settings import *  # noqa: E402,F403

IMAGEGEN_THROTTLE_RATES = {"user": None, "ip": None, "jobs": None}
IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER = None
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# The benchmark's client sends HTTP Basic auth with every request; with the default PBKDF2 hasher each one
# costs a few hundred ms of CPU on the server, and the run would measure password hashing, not the queue.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
