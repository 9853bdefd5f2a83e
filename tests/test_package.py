"""django-imagegen as a shop would get it: the wheel, installed into a clean virtualenv, in a host project of
its own.

The slow test builds the sdist and the wheel from a copy of the files the package is made of, installs the
wheel under constraints.txt into a new virtualenv and runs everything there, with the working directory in
a temporary folder, so nothing comes from this checkout: a small host project (its own product model,
``boutique.Garment`` with ``picture``, ``label``, ``notes`` and a ``line``, whose migration the installed
Django writes) migrates from zero on SQLite, serves the admin and the API first without torch installed,
then with the ``worker`` extra trains a tiny generator and runs a generate job through the services.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import tomllib
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# What the sdist is made of: the project's metadata files and the two packages.
PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE")
PACKAGES = ("imagegen", "mlcore")


def mlcore_version() -> str:
    """mlcore.__version__ as written in mlcore/__init__.py (read, not imported)."""
    tree = ast.parse((REPO / "mlcore" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("mlcore/__init__.py sets no __version__")


# --- the metadata, read (make test-fast runs these) ------------------------------------------------------


def test_one_version_the_one_checkpoints_store_and_the_changelog_names():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mlcore.__version__"}
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(mlcore_version())}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M), (
        f"CHANGELOG.md has no section for {mlcore_version()}")
    assert "## [Unreleased]" in changelog


def test_the_wheel_holds_the_app_and_the_model_code_only():
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    assert set(find["include"]) == {"imagegen", "imagegen.*", "mlcore", "mlcore.*"}
    assert PYPROJECT["project"]["license"] == "BSD-3-Clause" and (REPO / "LICENSE").is_file()


# --- the wheel in a clean virtualenv (make test only) ---------------------------------------------------

HOST_SETTINGS = '''
from pathlib import Path

BASE = Path(__file__).resolve().parent.parent
SECRET_KEY = "package-test-host-key-not-for-any-site-7d41c0a9e2"
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "boutique",
    "imagegen",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "atelier.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
MEDIA_ROOT = BASE / "media"
MEDIA_URL = "/media/"
STATIC_URL = "static/"
REST_FRAMEWORK = {"NUM_PROXIES": 0, "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
# No broker: jobs run in the process that makes them.
CELERY_TASK_ALWAYS_EAGER = True

IMAGEGEN_PRODUCT_MODEL = "boutique.Garment"
IMAGEGEN_PRODUCT_IMAGE_FIELD = "picture"
IMAGEGEN_PRODUCT_CATEGORY_FIELD = "line__handle"
IMAGEGEN_PRODUCT_TEXT_FIELDS = ("label", "notes")
IMAGEGEN_DEVICE = "cpu"
IMAGEGEN_DECODED_PHOTO_CACHE_MAX_MB = 0
'''

HOST_FILES = {
    "manage.py": '''
        import os
        import sys

        if __name__ == "__main__":
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atelier.settings")
            from django.core.management import execute_from_command_line

            execute_from_command_line(sys.argv)
    ''',
    "atelier/__init__.py": "",
    "atelier/settings.py": HOST_SETTINGS,
    "atelier/urls.py": '''
        from django.contrib import admin
        from django.urls import include, path
        from drf_spectacular.views import SpectacularAPIView

        urlpatterns = [
            path("admin/", admin.site.urls),
            path("api/", include("imagegen.api.urls")),
            path("api/schema/", SpectacularAPIView.as_view()),
        ]
    ''',
    "boutique/__init__.py": "",
    "boutique/migrations/__init__.py": "",
    "boutique/models.py": '''
        from django.db import models


        class Line(models.Model):
            handle = models.SlugField(unique=True)


        class Garment(models.Model):
            label = models.CharField(max_length=120)
            notes = models.TextField(blank=True)
            picture = models.ImageField(upload_to="garments/")
            line = models.ForeignKey(Line, on_delete=models.PROTECT, related_name="garments")
    ''',
    "boutique/admin.py": '''
        from django.contrib import admin
        from imagegen.admin import ImagegenProductAdminMixin

        from .models import Garment


        @admin.register(Garment)
        class GarmentAdmin(ImagegenProductAdminMixin, admin.ModelAdmin):
            list_display = ("label", "line")
    ''',
    # The web side: the admin and the API on the host's own products, as a staff user. Prints what it saw.
    "web_check.py": '''
        import importlib.util
        import json
        import sys

        import django

        django.setup()

        from django.contrib.auth import get_user_model
        from django.core.files.base import ContentFile
        from django.test import Client

        from boutique.models import Garment, Line

        photo = open(sys.argv[1], "rb").read()
        user = get_user_model().objects.filter(username="owner").first() or get_user_model().objects.create_superuser(
            "owner", "owner@example.com", "a-long-password-for-the-test"
        )
        garment = Garment.objects.first()
        if garment is None:
            garment = Garment(label="Linen shirt", notes="first web check", line=Line.objects.create(handle="shirt"))
            garment.picture.save("shirt.jpg", ContentFile(photo), save=True)
        client = Client()
        client.force_login(user)
        statuses = {url: client.get(url).status_code for url in (
            "/admin/",
            "/admin/boutique/garment/",
            f"/admin/boutique/garment/{garment.pk}/change/",
            "/admin/imagegen/job/",
            "/admin/imagegen/modelversion/",
            "/admin/imagegen/generatedimage/",
            f"/api/products/{garment.pk}/images/",
            "/api/schema/",
        )}
        # The "Generate images" action's form (not applied: no job is made).
        statuses["generate form"] = client.post(
            "/admin/boutique/garment/", {"action": "generate_images", "_selected_action": [garment.pk]}
        ).status_code
        import imagegen, mlcore

        print(json.dumps({
            "statuses": statuses,
            "torch_imported": "torch" in sys.modules,
            "torch_installed": importlib.util.find_spec("torch") is not None,
            "files": [imagegen.__file__, mlcore.__file__],
            "prefix": sys.prefix,
        }))
    ''',
    # The worker side: train a tiny generator on the host's garments and run a generate job, through the
    # services, as the admin actions and the Celery tasks do.
    "job_check.py": '''
        import json
        import sys
        from pathlib import Path

        import django

        django.setup()

        from django.core.files import File

        from boutique.models import Garment, Line
        from imagegen import services
        from imagegen.models import GeneratedImage, Job

        photos = Path(sys.argv[1])
        for handle in ("dress", "shoes"):
            line = Line.objects.get_or_create(handle=handle)[0]
            for path in sorted((photos / handle).glob("*.jpg")):
                garment = Garment(label=f"A {handle} called {path.stem}", notes="for the package test", line=line)
                with path.open("rb") as fh:
                    garment.picture.save(path.name, File(fh), save=True)
        ids = list(Garment.objects.filter(line__handle__in=["dress", "shoes"]).values_list("pk", flat=True))
        training = services.request_training(ids, kind="cgan", steps=4, batch_size=8, seed=1, device="cpu", send=False)
        training = services.execute(training.pk)
        dress = Garment.objects.filter(line__handle="dress").first()
        job = services.execute(services.request_generation(dress, count=2, seed=0, kind="cgan", send=False).pk)
        images = GeneratedImage.objects.filter(job=job)
        print(json.dumps({
            "training": [training.state, training.error or ""],
            "generate": [job.state, job.error or ""],
            "succeeded": Job.State.SUCCEEDED,
            "images": [[type(i.product).__name__, i.product.pk, i.image.storage.exists(i.image.name)] for i in images],
            "dress": dress.pk,
        }))
    ''',
}


def run(args: list, cwd: Path, env: dict, timeout: int = 900) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


def clean_env(**extra: str) -> dict:
    """The environment without anything that points at this checkout or its virtualenv."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE", "DATABASE_URL", "REDIS_URL", "PYTHONHOME"}}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "OMP_NUM_THREADS": "1", **extra}


@pytest.mark.slow
def test_the_wheel_installs_into_a_clean_virtualenv_and_a_host_of_its_own_generates(tmp_path, output_dir):
    timings = {}
    started = time.monotonic()

    def lap(name: str) -> None:
        nonlocal started
        timings[name] = round(time.monotonic() - started, 1)
        started = time.monotonic()

    # 1. The sdist from a copy of the package's files, the wheel from the sdist (as `python -m build` does).
    src, dist = tmp_path / "src", tmp_path / "dist"
    src.mkdir()
    for name in PACKAGE_FILES:
        shutil.copy2(REPO / name, src / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = clean_env()
    run([sys.executable, "-m", "build", "--outdir", dist, src], cwd=tmp_path, env=env)
    wheel = next(dist.glob("*.whl"))
    version = mlcore_version()
    assert wheel.name == f"django_imagegen-{version}-py3-none-any.whl"
    assert (dist / f"django_imagegen-{version}.tar.gz").is_file()

    # Every file of the two packages (migrations, templates, static files, those of apps inside imagegen
    # included) and nothing else: no shop, tests or bench.
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(src).as_posix() for package in PACKAGES for p in (src / package).rglob("*") if p.is_file()}
    assert expected - names == set(), f"missing from the wheel: {sorted(expected - names)[:20]}"
    info = f"django_imagegen-{version}.dist-info"
    assert {n.split("/")[0] for n in names} == {*PACKAGES, info}
    assert any(n.startswith("imagegen/migrations/0001") for n in names)
    metadata = Parser().parsestr(zipfile.ZipFile(wheel).read(f"{info}/METADATA").decode())
    assert (metadata["Name"], metadata["Version"], metadata["License-Expression"]) == ("django-imagegen", version, "BSD-3-Clause")
    requires = metadata.get_all("Requires-Dist")
    assert any(r.startswith("torch") and 'extra == "worker"' in r for r in requires), requires
    assert not any(r.startswith("torch") and "extra ==" not in r for r in requires), requires
    lap("build sdist and wheel")

    # 2. A clean virtualenv with the wheel and nothing else, under the lock: the web side, no torch.
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path, env=env)
    python = venv / "bin" / "python"
    constraints = tmp_path / "constraints.txt"
    shutil.copy2(REPO / "constraints.txt", constraints)
    run([python, "-m", "pip", "install", "-q", "-c", constraints, wheel], cwd=tmp_path, env=env)
    lap("venv and install without extras")

    # 3. The host project, its migration written by the installed Django, the database migrated from zero.
    host = tmp_path / "host"
    for name, text in HOST_FILES.items():
        (host / name).parent.mkdir(parents=True, exist_ok=True)
        (host / name).write_text(textwrap.dedent(text).lstrip())
    photos = tmp_path / "photos"
    for handle in ("dress", "shoes"):
        (photos / handle).mkdir(parents=True)
        for path in sorted((REPO / "shop" / "demo_catalogue" / handle).glob("*.jpg"))[:6]:
            shutil.copy2(path, photos / handle / path.name)
    host_env = clean_env(DJANGO_SETTINGS_MODULE="atelier.settings")
    manage = [python, "manage.py"]
    run([*manage, "makemigrations", "boutique"], cwd=host, env=host_env)
    migrated = run([*manage, "migrate", "--noinput"], cwd=host, env=host_env)
    assert "Applying imagegen.0001_initial... OK" in migrated and "Applying boutique.0001_initial... OK" in migrated
    # The installed package's migrations match its models.
    run([*manage, "makemigrations", "--check", "--dry-run"], cwd=host, env=host_env)
    run([*manage, "check", "--fail-level", "WARNING"], cwd=host, env=host_env)
    lap("host project: makemigrations, migrate, check")

    def web_check() -> dict:
        seen = json.loads(run([python, "web_check.py", photos / "dress" / sorted(os.listdir(photos / "dress"))[0]],
                              cwd=host, env=host_env).splitlines()[-1])
        assert set(seen["statuses"].values()) == {200}, seen["statuses"]
        for file in seen["files"]:
            assert Path(file).is_relative_to(venv), f"{file} is not the installed package"
        assert Path(seen["prefix"]) == venv
        return seen

    seen = web_check()
    assert not seen["torch_installed"] and not seen["torch_imported"]
    lap("web side without torch")

    # 4. The worker extra, under the same lock: torch and the rest of the model stack.
    run([python, "-m", "pip", "install", "-q", "-c", constraints, f"{wheel}[worker]"], cwd=tmp_path, env=env)
    lap("install [worker]")

    # With torch at hand the web side still does not load it.
    seen = web_check()
    assert seen["torch_installed"]
    assert not seen["torch_imported"], "a web request imported torch"
    lap("web side with torch installed")

    # 5. Train a tiny generator on the host's garments and generate through the services.
    result = json.loads(run([python, "job_check.py", photos], cwd=host, env=host_env).splitlines()[-1])
    assert result["training"] == [result["succeeded"], ""], result
    assert result["generate"] == [result["succeeded"], ""], result
    assert result["images"] == [["Garment", result["dress"], True]] * 2, result
    lap("train and generate")

    (output_dir / "package-test.json").write_text(json.dumps(timings, indent=2) + "\n")
