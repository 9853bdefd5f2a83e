"""Shared fixtures: per-test media folders, catalogue products with real photos, a trained model, and the
real parts (a Celery worker process on Redis, a live server, Debian's chromium)."""
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Playwright's sync API keeps an event loop in the test thread; Django would then refuse ORM calls there.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
DEMO_CATALOGUE = ROOT / "shop" / "demo_catalogue"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Every test writes its files into its own folder, never into the demo's var/media."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _class_conditional_default_kind(settings):
    """The suite's fixtures and requests use the class-conditional cgan, whose images depend on category and
    seed alone (many tests compare products of one category); the default kind, tcgan, and the others are
    tested by name (test_textgan, test_batching, test_copy_gate ...)."""
    settings.IMAGEGEN_DEFAULT_KIND = "cgan"


@pytest.fixture(autouse=True)
def _fresh_throttles():
    """API rate-limit counts live in the (per-process) default cache: no test inherits another's."""
    from django.core.cache import cache

    cache.clear()
    yield


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


def demo_photos(category: str, count: int) -> list[Path]:
    photos = sorted((DEMO_CATALOGUE / category).glob("*.jpg"))[:count]
    assert len(photos) == count, f"the demo catalogue has too few {category} photos"
    return photos


@pytest.fixture
def make_products(db):
    """Products with real photos from the demo catalogue: ``make_products({"dress": 6, "hat": 2})``."""
    from django.core.files import File

    from shop.models import Category, Product

    def make(counts: dict[str, int], with_photos: bool = True) -> list:
        products = []
        for category_slug, count in counts.items():
            category, _ = Category.objects.get_or_create(slug=category_slug, defaults={"name": category_slug.title()})
            for i, photo in enumerate(demo_photos(category_slug, count)):
                product = Product(
                    name=f"{category.name} {i}", slug=f"{category_slug}-{i}-{photo.stem[:8]}", category=category
                )
                if with_photos:
                    with photo.open("rb") as fh:
                        product.image.save(photo.name, File(fh), save=False)
                product.save()
                products.append(product)
        return products

    return make


@pytest.fixture
def trained_version(make_products):
    """A real (tiny, few-step) cgan model version for "dress" and "shoes", trained in this process."""
    from imagegen.services.products import product_photos
    from imagegen.services.training import register_version, train, training_parameters

    products = make_products({"dress": 6, "shoes": 6})
    params = training_parameters(steps=4, batch_size=8, seed=1, device="cpu") | {"product_ids": [p.pk for p in products]}
    trainer, summary, data = train(params, list(product_photos(params["product_ids"])))
    version = register_version(trainer, summary, data, params)
    version.test_products = products
    return version


# --- the real parts --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("REDIS_URL")
    if not url:
        pytest.fail("REDIS_URL is not set: these tests run a real Celery worker on Redis (make test sets it).")
    return url


@pytest.fixture(scope="session")
def worker_media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("worker-media")


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, redis_url, worker_media, output_dir):
    """A real `celery worker` process on the `gpu` and `train` queues, on Redis and on the test database."""
    import redis
    from django.db import connection

    redis.Redis.from_url(redis_url).flushdb()  # only the tests' own database number
    proc = start_worker(redis_url, worker_media, output_dir / "celery-worker.log", name=f"imagegen-test-{os.getpid()}@%h")
    yield proc
    stop_worker(proc)
    # Connections the live server's request threads opened are not closed when those threads end; drop
    # them so that the test database can be removed at the end of the session.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def start_worker(redis_url: str, media: Path, log_path: Path, *, name: str, queue: str = "gpu,train", env: dict | None = None):
    """Start a real `celery worker` process on the test database and wait until it answers a ping."""
    from django.db import connection

    from shop.celery import app

    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("The worker tests share the database with a worker process: set DATABASE_URL to PostgreSQL.")
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    database_url = f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIA_ROOT": str(media),
        "IMAGEGEN_DEVICE": "cpu",
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        **(env or {}),
    }
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "shop", "worker", "-Q", queue, "--concurrency", "1",
         "--loglevel", "INFO", "--without-gossip", "--without-mingle", "-n", name],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    proc.log = log
    hostname = name.replace("%h", socket.gethostname())
    deadline = time.monotonic() + 120
    while not app.control.ping(destination=[hostname], timeout=1.0):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"The Celery worker did not start; see {log_path}:\n{log_path.read_text()[-3000:]}")
    return proc


def stop_worker(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    proc.log.close()


@pytest.fixture
def worker(celery_worker_process, settings, worker_media, transactional_db):
    """Use in a test that needs jobs run by the worker: files go where the worker reads and writes them."""
    settings.MEDIA_ROOT = str(worker_media)
    settings.SERVE_MEDIA = True
    return celery_worker_process


def wait_for_job(job_id: int, timeout: float = 180):
    """Poll the job row until it reaches a final state."""
    from imagegen.models import Job

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=job_id)
        if job.is_finished:
            return job
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job.state} {job.progress}% {job.message}")


@pytest.fixture
def staff_user(db):
    """A staff user holding exactly imagegen's and the product admin's permissions (not a superuser)."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("staff", "staff@example.com", "staff-pass-123", is_staff=True)
    perms = Permission.objects.filter(content_type__app_label__in=["imagegen", "shop"])
    user.user_permissions.set(perms)
    return user


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (apt-get install chromium).")
    return path


@pytest.fixture
def browser_page(chromium_path, output_dir):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium_path,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-quic"],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


# --- the storefront's event buffer ---------------------------------------------------------------------


@pytest.fixture
def buffer(settings):
    """The real Redis event buffer of `make test` (REDIS_URL), emptied before and after."""
    from imagegen.storefront.services import shoppers

    settings.IMAGEGEN_EVENT_BUFFER_URL = os.environ["REDIS_URL"]
    client = shoppers.event_buffer()

    def empty():
        # The buffer and the flushers' processing lists (services.event_buffer).
        keys = client.keys("imagegen:events*")
        if keys:
            client.delete(*keys)

    empty()
    yield client
    empty()


@pytest.fixture
def unbuffered(settings):
    settings.IMAGEGEN_EVENT_BUFFER_URL = None


@pytest.fixture
def editor(django_user_model):
    """Staff with the permission to edit photos (the photo operations' admin actions and API routes)."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("editor", password="pw-editor-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="edit_photos"))
    return user


@pytest.fixture
def editor_api(editor):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(editor)
    return client


def pytest_collection_modifyitems(items):
    """A test that starts a Celery worker process (through the ``worker`` fixture) is an integration test,
    marked or not: ``make test-fast`` leaves it out."""
    for item in items:
        if {"worker", "celery_worker_process"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
