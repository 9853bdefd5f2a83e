"""The demo shop's settings for the storefront load benchmark (bench/storefront_load.py): production-like
(DEBUG off, persistent database connections, the Redis cache shared by the web processes) and a storefront
rate limit high enough for a load generator that is one client address."""
import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("CONN_MAX_AGE", "60")

from shop.settings import *  # noqa: E402,F403

IMAGEGEN_STOREFRONT_THROTTLE_RATE = "10000000/minute"
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
