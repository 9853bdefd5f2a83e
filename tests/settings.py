"""The test suite's settings: the demo shop's, as a production site has them (DEBUG off), with what a test
run needs set before they are read. Subprocesses (the Celery worker, manage.py) inherit these variables
and DJANGO_SETTINGS_MODULE, so they share the key that signs and hashes."""
import os

# Not the published demo key (shop.E001 refuses that with DEBUG off), and the same in every process.
os.environ.setdefault("SECRET_KEY", "imagegen-test-suite-key-not-for-any-site-0f6c2d9e8b7a")
# The live server and the test client speak plain http.
os.environ.setdefault("HTTPS", "0")
# Clients reach the live server directly, with no proxy in front (the check imagegen.W010 asks for it).
os.environ.setdefault("NUM_PROXIES", "0")
# Tests fetch generated files from the live server.
os.environ.setdefault("SERVE_MEDIA", "1")

from shop.settings import *  # noqa: E402,F401,F403
