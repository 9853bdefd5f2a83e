"""imagegen in a host that is not the demo shop: its own product model (``catalog.Item`` with ``photo``,
``title`` and a ``collection``), no app called ``shop`` and no storefront app, a database migrated from zero,
a model trained, a generate and an edit job run, all through manage.py in processes of their own on
PostgreSQL; then the storefront installed later on the same database."""
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fresh_database(db):
    """A new, empty PostgreSQL database next to the test database; its URL. Dropped afterwards."""
    s = connection.settings_dict
    if s["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("This test migrates a PostgreSQL database of its own: set DATABASE_URL to PostgreSQL.")
    name = f"imagegen_other_host_{uuid.uuid4().hex[:10]}"
    admin = dict(host=s["HOST"], port=s["PORT"] or 5432, user=s["USER"], password=s["PASSWORD"] or None, dbname="postgres")
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    password = f":{s['PASSWORD']}" if s["PASSWORD"] else ""
    yield f"postgres://{s['USER']}{password}@{s['HOST']}:{s['PORT'] or 5432}/{name}"
    with psycopg.connect(**admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(env: dict, *args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_a_host_with_its_own_product_model_migrates_from_zero_and_generates(fresh_database, tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.other_host.settings",
        "DATABASE_URL": fresh_database,
        "MEDIA_ROOT": str(tmp_path / "media"),
        "OMP_NUM_THREADS": "1",
    }
    run(env, "manage.py", "migrate", "--noinput")
    applied = run(env, "manage.py", "showmigrations", "imagegen", "catalog")
    assert "[ ]" not in applied and "0007_version_activation_and_copies" in applied
    assert "shop" not in run(env, "manage.py", "showmigrations", "--list").split()
    assert run(env, "-m", "tests.other_host.populate").strip() == "12"
    run(env, "manage.py", "train_imagegen", "--kind", "cgan", "--steps", "4", "--batch-size", "8", "--seed", "1")
    out = run(env, "manage.py", "generate_images", "--kind", "cgan", "--count", "2", "--per-category", "1", "--seed", "0")
    assert "2 generate jobs: 2 succeeded" in out, out
    check = run(env, "-c", (
        "import django; django.setup()\n"
        "from imagegen.models import GeneratedImage\n"
        "images = GeneratedImage.objects.select_related('product__collection')\n"
        "print(sorted({(type(i.product).__name__, i.product.collection.code) for i in images}), images.count())\n"
        "print(all(i.image.storage.exists(i.image.name) for i in images))"
    ))
    assert check.splitlines() == ["[('Item', 'dress'), ('Item', 'shoes')] 4", "True"], check

    # Without the storefront: an edit job runs, the core's routes answer and the storefront's do not exist.
    without = run(env, "-c", (
        "import django; django.setup()\n"
        "from django.apps import apps\n"
        "from django.test import Client\n"
        "from imagegen import services\n"
        "from tests.other_host.models import Item\n"
        "item = Item.objects.order_by('pk').first()\n"
        "job = services.request_edit(item, 'background', options={'background': '#ffffff'}, send=False)\n"
        "job = services.execute(job.pk)\n"
        "print(apps.is_installed('imagegen.storefront'), job.state, job.images.count(), job.error or '-')\n"
        "client = Client(HTTP_HOST='localhost')\n"
        "print(client.get(f'/api/products/{item.pk}/images/').status_code,\n"
        "      client.get(f'/api/storefront/products/{item.pk}/images/').status_code,\n"
        "      client.post('/api/storefront/events/', {}, content_type='application/json').status_code,\n"
        "      client.post('/api/storefront/opt-out/', {}, content_type='application/json').status_code)"
    ))
    assert without.splitlines() == ["False succeeded 1 -", "200 404 404 404"], without
    assert "imagegen_storefront" not in run(env, "manage.py", "showmigrations", "--list").split()

    # Installed later: its migrations apply on top (no inconsistent history) and its routes answer.
    env["OTHER_HOST_STOREFRONT"] = "1"
    run(env, "manage.py", "migrate", "--noinput")
    assert "[ ]" not in run(env, "manage.py", "showmigrations", "imagegen_storefront")
    with_storefront = run(env, "-c", (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "from tests.other_host.models import Item\n"
        "item = Item.objects.order_by('pk').first()\n"
        "print(Client(HTTP_HOST='localhost').get(f'/api/storefront/products/{item.pk}/images/').status_code)"
    ))
    assert with_storefront.strip() == "200", with_storefront
