"""The demo shop's settings are safe when nobody sets them: DEBUG off, the published key refused, cookies
secure, HSTS and a redirect to https; the demo asks for DEBUG explicitly."""
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_VARIABLES = ("DEBUG", "SECRET_KEY", "HTTPS", "SECURE_HSTS_SECONDS", "SERVE_MEDIA", "TRUST_X_FORWARDED_PROTO")


def shop_settings(**env) -> dict:
    """shop/settings.py as a process with exactly ``env`` (of the variables above) would read it."""
    with pytest.MonkeyPatch.context() as patch:
        for name in SETTINGS_VARIABLES:
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        return runpy.run_path(str(ROOT / "shop" / "settings.py"))


def test_nothing_set_means_debug_off_and_https_only():
    s = shop_settings()
    assert s["DEBUG"] is False
    assert s["SECURE_SSL_REDIRECT"] and s["SESSION_COOKIE_SECURE"] and s["CSRF_COOKIE_SECURE"]
    assert s["SECURE_HSTS_SECONDS"] >= 24 * 3600
    assert s["SERVE_MEDIA"] is False
    assert "SECURE_PROXY_SSL_HEADER" not in s, "X-Forwarded-Proto is trusted only when asked for"


def test_the_demo_with_debug_on_speaks_plain_http():
    s = shop_settings(DEBUG="1")
    assert s["DEBUG"] is True and s["SECRET_KEY"] == s["PUBLISHED_SECRET_KEY"]
    assert not (s["SECURE_SSL_REDIRECT"] or s["SESSION_COOKIE_SECURE"] or s["CSRF_COOKIE_SECURE"] or s["SECURE_HSTS_SECONDS"])


def test_https_can_be_switched_off_for_a_local_stack_and_the_proxy_header_on():
    s = shop_settings(SECRET_KEY="k" * 50, HTTPS="0", TRUST_X_FORWARDED_PROTO="1")
    assert not s["SECURE_SSL_REDIRECT"] and s["SECURE_HSTS_SECONDS"] == 0
    assert s["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_the_published_key_is_a_check_error_when_debug_is_off(settings):
    from shop.checks import check_secret_key

    settings.DEBUG, settings.SECRET_KEY = False, settings.PUBLISHED_SECRET_KEY
    assert [m.id for m in check_secret_key()] == ["shop.E001"]
    settings.DEBUG = True
    assert check_secret_key() == []
    settings.DEBUG, settings.SECRET_KEY = False, "an-own-key-" + "x" * 40
    assert check_secret_key() == []


def test_manage_py_refuses_to_run_on_the_published_key():
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    env["DJANGO_SETTINGS_MODULE"] = "shop.settings"
    env.pop("DATABASE_URL", None)
    env["VAR_DIR"] = str(ROOT / "test-output" / "deploy-settings-var")
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "shop.E001" in done.stderr, done.stderr[-2000:]
    env["SECRET_KEY"] = "an-own-key-" + "x" * 40
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "shop.E001" not in done.stderr + done.stdout


def test_the_health_check_answers_over_http_while_the_rest_redirects(settings, db):
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    assert client.get("/healthz/").status_code == 200
    redirect = client.get("/admin/")
    assert redirect.status_code == 301 and redirect["Location"].startswith("https://")
