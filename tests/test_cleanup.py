"""Files follow their rows (deleted once the deletion commits), and cleanup_imagegen sweeps what is left
(issue 15, item 11). Real files in the test's MEDIA_ROOT; transactional_db, since files go on commit."""
import os
import time
from datetime import timedelta
from io import BytesIO, StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from imagegen.models import GeneratedImage, Job, ModelVersion

pytestmark = pytest.mark.usefixtures("transactional_db")

DAY = 24 * 3600


def media(settings, name: str) -> Path:
    return Path(settings.MEDIA_ROOT) / name


def make_image(product, *, seed: int = 0, review_state=GeneratedImage.ReviewState.PENDING, data=b"png" * 100) -> GeneratedImage:
    image = GeneratedImage(product=product, seed=seed, review_state=review_state)
    image.image.save("generated.png", ContentFile(data), save=False)
    image.save()
    return image


def make_version(*, active: bool = False, kind: str = "cgan") -> ModelVersion:
    version = ModelVersion(kind=kind, categories=["dress"], is_active=active)
    version.checkpoint.save("model.pt", ContentFile(b"weights" * 1000), save=False)
    version.sample_grid.save("sample_grid.png", ContentFile(b"grid"), save=False)
    version.save()
    return version


def age(model, pk, days: float) -> None:
    model.objects.filter(pk=pk).update(created_at=timezone.now() - timedelta(days=days))


def orphan(settings, name: str, days: float) -> Path:
    path = media(settings, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * 2048)
    then = time.time() - days * DAY
    os.utime(path, (then, then))
    return path


@pytest.fixture
def product(make_products):
    return make_products({"dress": 1})[0]


# --- files follow their rows ----------------------------------------------------------------------------


def test_a_deleted_image_s_file_goes_once_the_deletion_commits(product, settings):
    image = make_image(product)
    pk, path = image.pk, media(settings, image.image.name)
    assert path.exists()
    with pytest.raises(RuntimeError), transaction.atomic():
        GeneratedImage.objects.filter(pk=pk).delete()
        raise RuntimeError("rolled back")
    assert path.exists()  # a rolled back delete keeps the file
    GeneratedImage.objects.filter(pk=pk).delete()
    assert not path.exists()


def test_a_file_another_row_still_refers_to_is_kept(product, settings):
    image = make_image(product)
    twin = GeneratedImage.objects.create(product=product, seed=1, image=image.image.name)
    image.delete()
    assert media(settings, twin.image.name).exists()
    twin.delete()
    assert not media(settings, image.image.name).exists()


def test_a_deleted_model_version_takes_its_files_along(settings):
    version = make_version()
    paths = [media(settings, version.checkpoint.name), media(settings, version.sample_grid.name)]
    assert all(path.exists() for path in paths)
    version.delete()
    assert not any(path.exists() for path in paths)


def test_a_deleted_job_takes_its_mask_along(product, settings):
    from PIL import Image

    from imagegen import services

    mask = Image.new("L", (product.image.width, product.image.height), 0)
    mask.paste(255, (0, 0, 8, 8))
    buffer = BytesIO()
    mask.save(buffer, format="PNG")
    job = services.request_edit(product, "repair", mask=buffer.getvalue(), send=False)
    path = media(settings, job.parameters["options"]["mask"])
    assert path.exists()
    job.delete()
    assert not path.exists()


# --- cleanup_imagegen -----------------------------------------------------------------------------------


@pytest.fixture
def mess(product, settings):
    """One of each: what the sweep removes (old) and what it must keep (recent, active, in use)."""
    keep_image = make_image(product, seed=1)
    old_rejected = make_image(product, seed=2, review_state=GeneratedImage.ReviewState.REJECTED)
    new_rejected = make_image(product, seed=3, review_state=GeneratedImage.ReviewState.REJECTED)
    age(GeneratedImage, old_rejected.pk, 40)
    age(GeneratedImage, keep_image.pk, 40)
    active = make_version(active=True)
    retired = make_version()
    in_use = make_version()
    recent = make_version()
    for version in (active, retired, in_use):
        age(ModelVersion, version.pk, 40)
    Job.objects.create(kind=Job.Kind.GENERATE, state=Job.State.RUNNING, product=product, model_version=in_use)
    return {
        "old orphan": orphan(settings, "imagegen/images/9/lost.png", 40),
        "recent orphan": orphan(settings, "imagegen/models/cgan/half-saved.pt", 0.1),
        "outside": orphan(settings, "products/not-ours.jpg", 400),
        "keep_image": keep_image, "old_rejected": old_rejected, "new_rejected": new_rejected,
        "active": active, "retired": retired, "in_use": in_use, "recent": recent,
    }


def sweep(*args) -> str:
    out = StringIO()
    call_command("cleanup_imagegen", *args, stdout=out)
    return out.getvalue()


def test_a_dry_run_lists_what_would_go_and_deletes_nothing(mess, settings):
    files_before = sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())
    out = sweep("--older-than", "30")
    assert "would delete imagegen/images/9/lost.png (2.0\xa0KB)" in out
    assert f"would delete {mess['old_rejected']}" in out and f"(#{mess['retired'].pk})" in out
    assert "orphan files: 1 (2.0\xa0KB)" in out and "rejected images: 1" in out and "retired model versions: 1" in out
    assert "Dry run" in out
    assert sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == files_before
    assert GeneratedImage.objects.count() == 3 and ModelVersion.objects.count() == 4


def test_apply_deletes_old_orphans_rejected_images_and_retired_versions_only(mess, settings):
    retired_files = [media(settings, mess["retired"].checkpoint.name), media(settings, mess["retired"].sample_grid.name)]
    rejected_file = media(settings, mess["old_rejected"].image.name)
    out = sweep("--older-than", "30", "--apply")
    assert "deleted imagegen/images/9/lost.png" in out and "retired model versions: 1" in out
    assert not mess["old orphan"].exists() and not rejected_file.exists()
    assert not any(path.exists() for path in retired_files)
    assert set(GeneratedImage.objects.values_list("pk", flat=True)) == {mess["keep_image"].pk, mess["new_rejected"].pk}
    assert set(ModelVersion.objects.values_list("pk", flat=True)) == {mess[k].pk for k in ("active", "in_use", "recent")}
    # Recent orphans (a job may be saving them), files outside imagegen's folder and every kept row's files stay.
    assert mess["recent orphan"].exists() and mess["outside"].exists()
    for key in ("keep_image", "new_rejected"):
        assert media(settings, mess[key].image.name).exists()
    for key in ("active", "in_use", "recent"):
        assert media(settings, mess[key].checkpoint.name).exists()
    assert "orphan files: 0" in sweep("--older-than", "30")


class UndeletableStorage(FileSystemStorage):
    def delete(self, name):
        raise PermissionError(f"may not delete {name}")


def test_what_cannot_be_deleted_is_reported_and_fails_the_command(settings):
    orphan(settings, "imagegen/images/1/stuck.png", 40)
    settings.STORAGES = {**settings.STORAGES, "undeletable": {"BACKEND": f"{__name__}.UndeletableStorage"}}
    settings.IMAGEGEN_STORAGE = "undeletable"
    out = StringIO()
    with pytest.raises(CommandError, match="1 items could not be deleted"):
        call_command("cleanup_imagegen", "--older-than", "30", "--apply", stdout=out)
    assert "could not delete imagegen/images/1/stuck.png: may not delete" in out.getvalue()
