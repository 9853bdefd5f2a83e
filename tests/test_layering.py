"""The layering of imagegen is checked, not hoped for: the import contracts (``.importlinter``) hold, a web
process serves the admin and the API and queues a job without loading torch, and every kind of job has
exactly one runner registered with the job core."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    """mlcore knows no Django; no cycle inside imagegen; the job core imports no work; only the torch backend
    imports mlcore/torch; the core imports no storefront. Each contract fails the run when broken."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert done.stdout.count(" KEPT") >= 6 and "BROKEN" not in done.stdout


def test_a_broken_contract_fails_the_check(tmp_path):
    """The contracts are not vacuous: a job-core module that imports the work breaks one."""
    config = (ROOT / ".importlinter").read_text()
    package = tmp_path / "imagegen"
    # A copy of the package with one forbidden import added to the job core.
    subprocess.run(["cp", "-r", str(ROOT / "imagegen"), str(package)], check=True)
    subprocess.run(["cp", "-r", str(ROOT / "mlcore"), str(tmp_path / "mlcore")], check=True)
    with open(package / "jobcore" / "states.py", "a") as fh:
        fh.write("\n\ndef _leak():\n    from ..services import generation  # noqa: F401\n")
    (tmp_path / ".importlinter").write_text(config)
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert done.returncode != 0
    assert "The job core imports none of the work it runs BROKEN" in done.stdout


WEB_PROCESS = textwrap.dedent(
    """
    import json, os, sys
    import django
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse

    from django.conf import settings
    settings.ALLOWED_HOSTS.append("testserver")  # the test client's host name
    call_command("migrate", verbosity=0)
    call_command("check", fail_level="ERROR")
    from shop.models import Category, Product

    user = get_user_model().objects.create_superuser("web", "web@example.com", "pw-web-process-1")
    product = Product.objects.create(name="Red dress", slug="red-dress", category=Category.objects.create(name="dress"))
    client = Client()
    client.force_login(user)
    pages = ["/admin/", "/admin/shop/product/", f"/admin/shop/product/{product.pk}/change/",
             "/admin/imagegen/job/", "/admin/imagegen/modelversion/", "/admin/imagegen/generatedimage/",
             "/api/schema/", f"/api/products/{product.pk}/images/"]
    statuses = {page: client.get(page).status_code for page in pages}
    queued = client.post(f"/api/products/{product.pk}/generate/", {"count": 1}, content_type="application/json")
    # A new photo while the storefront has segments queues the product's variants from the web process.
    from django.core.files import File
    from imagegen.models import Job
    from imagegen.storefront.models import Segment

    Segment.objects.create(index=0, centroid=[0.5, 0.1, 0.2, 0.9, 0.0, 0.0])
    with open(os.environ["WEB_PHOTO"], "rb") as fh:
        product.image.save("dress.jpg", File(fh))
    variants = Job.objects.filter(kind=Job.Kind.EDIT, parameters__segment__isnull=False).count()
    loaded = sorted({name.split(".")[0] for name in sys.modules} & {"torch", "torchvision"})
    # The backend's light part (its version, the kinds it trains) reads mlcore's torch-free modules.
    light = sorted(name for name in sys.modules if name.startswith("mlcore"))
    print(json.dumps({"statuses": statuses, "queued": queued.status_code, "variants": variants, "loaded": loaded,
                      "mlcore": light}))
    """
)


@pytest.mark.django_db
def test_a_web_process_serves_the_admin_and_api_and_queues_jobs_without_torch(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'web.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "WEB_PHOTO": str(sorted((ROOT / "shop" / "demo_catalogue" / "dress").glob("*.jpg"))[0]),
    }
    assert env.get("REDIS_URL"), "the job is sent to a real broker (no worker takes it)"
    done = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report["statuses"].values()) == {200}, report["statuses"]
    assert report["queued"] == 202 and report["variants"] == 1
    assert report["loaded"] == [], f"a web process loaded {report['loaded']} (mlcore modules: {report['mlcore']})"


def test_every_job_kind_has_one_runner():
    from imagegen.jobcore.runners import registered, runner_for
    from imagegen.models import Job

    assert sorted(registered()) == sorted(Job.Kind.values)
    for kind in Job.Kind.values:
        assert runner_for(kind).kind == kind
    with pytest.raises(LookupError, match="No runner"):
        runner_for("nonexistent")


def test_every_method_of_the_torch_backend_resolves():
    """The backend's table names a function of its module for each method; a typo fails here, not in a job."""
    from imagegen.backends.torch import TorchBackend
    from imagegen.backends.torch.lazy import In

    backend = TorchBackend()
    lazy = [name for name, value in vars(TorchBackend).items() if isinstance(value, In)]
    assert len(lazy) > 20
    for name in lazy:
        assert callable(getattr(backend, name)), name
    assert backend.version and "cgan" in backend.generator_kinds()


class _RemoteBackend:
    """A host's own backend (say, a remote inference service): only what the web path asks for."""

    version = "remote-1"

    def generator_kinds(self):
        return ("cgan",)


def test_the_backend_is_swapped_by_a_setting(settings):
    from imagegen.backends import get_backend

    assert type(get_backend()).__name__ == "TorchBackend"
    settings.IMAGEGEN_BACKEND = f"{__name__}._RemoteBackend"
    assert get_backend().version == "remote-1"
    from imagegen.services.provenance import generated_image_xmp

    class Version:
        pk = 7

        def __str__(self):
            return "cgan v7"

    assert "imagegen remote-1" in generated_image_xmp(model_version=Version(), seed=3)
