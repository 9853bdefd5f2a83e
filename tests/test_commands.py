"""train_imagegen and generate_images as a shop operator runs them."""
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from imagegen.models import GeneratedImage, Job, ModelVersion

pytestmark = pytest.mark.slow


def test_train_dry_run_writes_plots_and_registers_nothing(make_products, tmp_path):
    make_products({"dress": 4, "hat": 4})
    out = StringIO()
    call_command("train_imagegen", "--dry-run", "--device", "cpu", "--batch-size", "4", "--out", str(tmp_path), stdout=out)
    assert "Dry run: 3 steps on 8 photos" in out.getvalue()
    assert (tmp_path / "sample_grid.png").stat().st_size > 0 and (tmp_path / "loss_curve.png").stat().st_size > 0
    assert not ModelVersion.objects.exists() and not Job.objects.exists()


def test_train_then_resume_then_generate(make_products, tmp_path, settings):
    # Two more steps of a 4-step model need not measure better: activation is not what this test is about.
    settings.IMAGEGEN_AUTO_ACTIVATE = "always"
    make_products({"dress": 4, "hat": 4, "pants": 3})
    out = StringIO()
    call_command(
        "train_imagegen", "--categories", "dress", "hat", "--steps", "4", "--batch-size", "4", "--device", "cpu",
        "--seed", "2", "--out", str(tmp_path), stdout=out, stderr=StringIO(),
    )
    version = ModelVersion.objects.exclude(kind="features").get()  # and the extractor training trained for itself
    assert version.categories == ["dress", "hat"] and version.image_count == 8 and version.metrics["steps"] == 4
    assert f"(id {version.pk})" in out.getvalue()
    assert (tmp_path / "sample_grid.png").stat().st_size > 0 and (tmp_path / "loss_curve.png").stat().st_size > 0
    assert Job.objects.get().requested_by is None and Job.objects.get().state == Job.State.SUCCEEDED

    call_command(
        "train_imagegen", "--categories", "dress", "hat", "--steps", "2", "--resume", str(version.pk),
        "--device", "cpu", stdout=StringIO(), stderr=StringIO(),
    )
    resumed = ModelVersion.objects.order_by("-id").first()
    assert resumed.pk != version.pk and resumed.metrics["steps"] == 6
    version.refresh_from_db()
    assert resumed.is_active and not version.is_active

    out = StringIO()
    call_command("generate_images", "--categories", "dress", "pants", "--count", "2", "--seed", "0", stdout=out)
    assert "3 failed" in out.getvalue() and "4 succeeded" in out.getvalue()
    assert GeneratedImage.objects.count() == 8


def test_train_with_no_matching_products_fails(db):
    with pytest.raises(CommandError, match="No products match"):
        call_command("train_imagegen", "--categories", "nothing", stdout=StringIO())


def test_train_with_bad_option_names_it(make_products):
    make_products({"dress": 1})
    with pytest.raises(CommandError, match="Batch size"):
        call_command("train_imagegen", "--batch-size", "0", stdout=StringIO())
    assert not Job.objects.exists()
