"""Jobs that run long, attempts that come back late, and caches that fail (issue 15, items 8 to 10).

A stale attempt is made the way it happens: while an attempt is saving its results (slow storage), the
reconciler hands the job to a newer attempt, or the shop owner cancels it. The storage below is the local
file system with a hook that does that, once, from another database connection, while the first file is
written.
"""
import json
import os
import stat
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.db import connection
from django.utils import timezone

from imagegen import services
from imagegen.conf import DEFAULTS
from imagegen.models import GeneratedImage, Job, ModelVersion
from imagegen.services.generation import request_generation
from imagegen.jobcore.runners import Claimed, runner_for
from imagegen.jobcore.states import claim
from imagegen.services.training import request_training

pytestmark = pytest.mark.slow


class InterruptingStorage(FileSystemStorage):
    """Local storage that runs ``hook`` from another thread (its own database connection) while it writes
    the first file whose name contains ``when``."""

    hook = None
    when = ""

    def _save(self, name, content):
        cls = type(self)
        if cls.hook is not None and cls.when in name:
            hook, cls.hook = cls.hook, None
            elsewhere(hook)
        return super()._save(name, content)


def elsewhere(fn) -> None:
    errors = []

    def run():
        try:
            fn()
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@pytest.fixture
def interrupting(settings):
    """imagegen's files go through InterruptingStorage (in the test's MEDIA_ROOT); arm it with ``arm``."""
    settings.STORAGES = {**settings.STORAGES, "interrupting": {"BACKEND": f"{__name__}.InterruptingStorage"}}
    settings.IMAGEGEN_STORAGE = "interrupting"

    def arm(hook, when: str = "") -> None:
        InterruptingStorage.hook, InterruptingStorage.when = hook, when

    yield arm
    InterruptingStorage.hook = None


def taken_over(job_id: int):
    """What the reconciler and a second worker do to a job whose worker stalled: its lease has run out,
    and the second worker claims it (a newer attempt)."""

    def take() -> None:
        Job.objects.filter(pk=job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        assert claim(job_id) is not None

    return take


def cancelled(job_id: int):
    return lambda: services.cancel(Job.objects.get(pk=job_id))


def files_under(settings, folder: str) -> set[str]:
    from imagegen.conf import settings as imagegen_settings

    root = Path(settings.MEDIA_ROOT) / imagegen_settings.UPLOAD_TO / folder
    return {str(p.relative_to(settings.MEDIA_ROOT)) for p in root.rglob("*") if p.is_file()}


# --- item 8: training has its own time limits ------------------------------------------------------------


@pytest.fixture
def train_queue(settings, redis_url):
    """The training queue renamed to a private one no worker consumes; removed after."""
    from kombu import Exchange, Queue

    from shop.celery import app

    name = f"imagegen-train-limits-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    settings.IMAGEGEN_TRAIN_QUEUE = name
    queue = Queue(name, Exchange(name), routing_key=name)
    with app.connection_for_write() as conn:
        queue(conn.default_channel).declare()
    yield queue
    with app.connection_for_write() as conn:
        bound = queue(conn.default_channel)
        bound.declare()
        bound.delete()


def test_a_training_job_is_sent_as_a_task_that_carries_the_training_time_limits(
    train_queue, make_products, settings, django_capture_on_commit_callbacks
):
    from shop.celery import app

    settings.IMAGEGEN_TRAIN_TASK_SOFT_TIME_LIMIT, settings.IMAGEGEN_TRAIN_TASK_TIME_LIMIT = 7 * 3600, 8 * 3600
    products = make_products({"dress": 2})
    with django_capture_on_commit_callbacks(execute=True):
        job = request_training([p.pk for p in products], steps=4, device="cpu")
    with app.connection_for_write() as conn:
        message = train_queue(conn.default_channel).get(no_ack=True)
    assert message is not None
    args, _kwargs, _embed = json.loads(message.body)
    assert args == [job.pk]
    assert message.headers["task"] == "imagegen.run_training_job"
    # [hard, soft]: what the worker enforces for this message, whatever the task's defaults.
    assert message.headers["timelimit"] == [8 * 3600, 7 * 3600]
    task = app.tasks["imagegen.run_training_job"]
    assert task.acks_late and task.reject_on_worker_lost
    assert (DEFAULTS["TRAIN_TASK_SOFT_TIME_LIMIT"], DEFAULTS["TRAIN_TASK_TIME_LIMIT"]) == (24 * 3600 - 300, 24 * 3600)


def test_inference_jobs_keep_their_task_and_its_limits(train_queue, make_products, settings, django_capture_on_commit_callbacks):
    from kombu import Exchange, Queue

    from shop.celery import app

    name = f"{train_queue.name}-gpu"
    settings.IMAGEGEN_QUEUE = name
    queue = Queue(name, Exchange(name), routing_key=name)
    (product,) = make_products({"dress": 1})
    with app.connection_for_write() as conn:
        queue(conn.default_channel).declare()
        with django_capture_on_commit_callbacks(execute=True):
            request_generation(product, count=1)
        bound = queue(conn.default_channel)
        message = bound.get(no_ack=True)
        bound.delete()
    assert message.headers["task"] == "imagegen.run_job"
    assert message.headers["timelimit"] == [3600, 3300]


def test_a_time_budget_beyond_the_training_time_limit_is_warned_about(settings):
    from django.core import checks

    settings.IMAGEGEN_TRAIN_MAX_MINUTES = 30 * 60
    found = {m.id for m in checks.run_checks() if m.id and m.id.startswith("imagegen.")}
    assert "imagegen.W020" in found
    settings.IMAGEGEN_TRAIN_MAX_MINUTES = 60
    settings.IMAGEGEN_TRAIN_TASK_SOFT_TIME_LIMIT = settings.IMAGEGEN_TRAIN_TASK_TIME_LIMIT = 3600
    found = {m.id for m in checks.run_checks() if m.id and m.id.startswith("imagegen.")}
    assert "imagegen.W020" not in found and "imagegen.E050" in found


def test_the_compose_training_worker_keeps_its_checkpoints_in_a_named_volume():
    import yaml

    compose = yaml.safe_load((Path(__file__).resolve().parent.parent / "docker" / "compose.yaml").read_text())
    worker = compose["services"]["train-worker"]
    folder = worker["environment"]["IMAGEGEN_TRAIN_CHECKPOINT_DIR"]
    assert os.path.isabs(folder)
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in worker["volumes"]}
    assert mounts[folder] in compose["volumes"]


# --- item 9: a stale or cancelled attempt writes nothing ------------------------------------------------


def test_a_stalled_generate_attempt_taken_over_keeps_nothing_and_the_newer_one_succeeds(
    transactional_db, trained_version, interrupting, settings
):
    job = request_generation(trained_version.test_products[0], count=2, seed=3, send=False)
    interrupting(taken_over(job.pk), when="/images/")
    services.execute(job.pk)
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and job.attempts == 2
    assert not GeneratedImage.objects.filter(job=job).exists()
    assert files_under(settings, "images") == set()

    # The newer attempt, on the other worker, attaches its images without tripping over the stale ones.
    runner_for(Job.Kind.GENERATE).run([Claimed(job.pk, attempt=2)])
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED and job.model_version_id == trained_version.pk
    images = GeneratedImage.objects.filter(job=job)
    assert sorted(images.values_list("seed", flat=True)) == [3, 4]
    assert files_under(settings, "images") == {image.image.name for image in images}


def test_a_generate_job_cancelled_while_its_images_are_saved_gets_none(transactional_db, trained_version, interrupting, settings):
    job = request_generation(trained_version.test_products[0], count=2, seed=0, send=False)
    interrupting(cancelled(job.pk), when="/images/")
    done = services.execute(job.pk)
    assert done.state == Job.State.CANCELLED
    assert not GeneratedImage.objects.filter(job=job).exists()
    assert files_under(settings, "images") == set()


def test_a_job_done_before_a_cancel_stays_done(transactional_db, trained_version):
    job = request_generation(trained_version.test_products[0], count=1, seed=0, send=False)
    done = services.execute(job.pk)
    assert done.state == Job.State.SUCCEEDED and not services.cancel(done)


def test_a_stalled_attempt_in_a_batched_pass_keeps_nothing_and_the_others_keep_theirs(
    transactional_db, trained_version, interrupting, settings
):
    product = trained_version.test_products[0]
    stalled = request_generation(product, count=1, seed=0, send=False)
    other = request_generation(product, count=2, seed=5, send=False)
    interrupting(taken_over(stalled.pk), when="/images/")
    services.execute_many([stalled.pk, other.pk])
    stalled.refresh_from_db()
    other.refresh_from_db()
    assert stalled.state == Job.State.RUNNING and stalled.attempts == 2
    assert not GeneratedImage.objects.filter(job=stalled).exists()
    assert other.state == Job.State.SUCCEEDED and GeneratedImage.objects.filter(job=other).count() == 2
    kept = {image.image.name for image in GeneratedImage.objects.filter(job=other)}
    assert files_under(settings, "images") == kept


def test_an_edit_job_cancelled_while_its_result_is_saved_gets_none(transactional_db, make_products, interrupting, settings):
    (product,) = make_products({"hat": 1})
    job = services.request_edit(product, "background", send=False)
    interrupting(cancelled(job.pk), when="/images/")
    done = services.execute(job.pk)
    assert done.state == Job.State.CANCELLED
    assert not GeneratedImage.objects.filter(job=job).exists()
    assert files_under(settings, "images") == set()


def test_a_stalled_training_attempt_registers_no_version_and_the_newer_one_registers_one(
    transactional_db, trained_version, interrupting, settings
):

    products = trained_version.test_products
    versions = set(ModelVersion.objects.values_list("pk", flat=True))
    files = files_under(settings, "models")
    job = request_training([p.pk for p in products], steps=2, batch_size=8, seed=2, device="cpu", send=False)
    interrupting(taken_over(job.pk), when="/models/")
    services.execute(job.pk)
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and job.attempts == 2 and job.model_version_id is None
    assert set(ModelVersion.objects.values_list("pk", flat=True)) == versions
    assert files_under(settings, "models") == files

    runner_for(Job.Kind.TRAIN).run([Claimed(job.pk, attempt=2)])
    job.refresh_from_db()
    new = set(ModelVersion.objects.values_list("pk", flat=True)) - versions
    assert job.state == Job.State.SUCCEEDED and new == {job.model_version_id}


# --- item 10: the decoded-photo cache never makes a photo unreadable ------------------------------------


def test_a_cache_that_fails_to_write_still_gives_the_photos(make_products, settings, tmp_path):
    """Works as root too: a file where the cache's folder should be makes every write fail."""
    from imagegen.services.products import product_photos
    from imagegen.services.training_sets import load_training_set

    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    settings.IMAGEGEN_DECODED_PHOTO_CACHE_DIR = str(blocker)
    products = make_products({"dress": 3, "hat": 2})
    data = load_training_set(list(product_photos([p.pk for p in products])), 64)
    assert len(data.images) == 5 and data.skipped == []


def test_the_default_cache_folder_is_private_to_the_user(settings, tmp_path, monkeypatch):
    from imagegen.services.decoded_photos import decoded_photo_cache

    # The system's temporary folder, pointed at one of the test's own.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    settings.IMAGEGEN_DECODED_PHOTO_CACHE_DIR = None
    cache = decoded_photo_cache()
    root = Path(cache.root)
    assert root.parent == tmp_path and str(os.getuid()) in root.name
    info = root.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()

    # A folder of that name that others may write to (planted by another user, say) is not used.
    root.chmod(0o777)
    assert decoded_photo_cache() is None
