"""Jobs survive lost workers and an unreachable broker: leases, fencing, attempts, the reconciler.

The in-process tests drive the claim protocol on PostgreSQL; the integration tests SIGKILL a real worker
process in the middle of a job and take the broker away from a real web request.
"""
import os
import signal
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from imagegen import services
from imagegen.models import GeneratedImage, Job, ModelVersion
from imagegen.services.generation import request_generation
from imagegen.jobcore.errors import JobCancelled
from imagegen.jobcore.progress import ProgressReporter
from imagegen.jobcore.states import claim, finish
from imagegen.services.training import request_training

from .conftest import start_worker, stop_worker, wait_for_job

pytestmark = pytest.mark.slow


def expire_lease(job):
    Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_claim_takes_a_lease_and_a_live_lease_cannot_be_taken(trained_version):
    job = request_generation(trained_version.test_products[0], count=1, seed=0, send=False)
    assert claim(job.pk) == 1
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and job.lease_expires_at > timezone.now() and job.worker.endswith(f":{os.getpid()}")
    assert claim(job.pk) is None  # its worker is alive: nobody else may take it


def test_an_expired_lease_is_claimed_again_and_fences_the_old_attempt_off(trained_version, settings):
    job = request_generation(trained_version.test_products[0], count=2, seed=0, send=False)
    first = claim(job.pk)
    expire_lease(job)
    second = claim(job.pk)
    assert (first, second) == (1, 2)
    # The first attempt's worker comes back to life: its progress and its result are refused.
    with pytest.raises(JobCancelled):
        ProgressReporter(job.pk, attempt=first)(50, "late")
    finish(job.pk, Job.State.FAILED, first, error="stale")
    job.refresh_from_db()
    assert job.state == Job.State.RUNNING and job.attempts == 2 and job.error == ""
    ProgressReporter(job.pk, attempt=second)(40, "current")  # the holder reports fine


def test_lost_workers_fail_the_job_with_the_reason_after_the_last_attempt(trained_version, settings):
    settings.IMAGEGEN_JOB_MAX_ATTEMPTS = 2
    job = request_generation(trained_version.test_products[0], count=1, seed=0, send=False)
    for _ in range(2):
        assert claim(job.pk) is not None
        expire_lease(job)
    assert services.execute(job.pk) is None
    job.refresh_from_db()
    assert job.state == Job.State.FAILED and "Gave up after 2 attempts" in job.error
    assert not GeneratedImage.objects.filter(job=job).exists()


def test_a_rerun_after_a_lost_worker_attaches_each_image_once(trained_version):
    job = request_generation(trained_version.test_products[0], count=3, seed=4, send=False)
    services.execute(job.pk)
    # As if the worker died after attaching the images but before marking the job done.
    Job.objects.filter(pk=job.pk).update(state=Job.State.RUNNING, lease_expires_at=timezone.now() - timedelta(seconds=1))
    rerun = services.execute(job.pk)
    assert rerun.state == Job.State.SUCCEEDED and rerun.attempts == 2
    assert GeneratedImage.objects.filter(job=job).count() == 3


def test_the_heartbeat_renews_the_lease_while_a_job_runs(transactional_db, make_products, settings):
    # transactional_db: the heartbeat thread has its own connection and must see the committed job row.
    settings.IMAGEGEN_JOB_LEASE_SECONDS = 1.5
    products = make_products({"dress": 5, "hat": 4})
    job = request_training([p.pk for p in products], steps=60, batch_size=4, device="cpu", send=False)
    leases = []

    def watch(percent, message):
        leases.append(Job.objects.values_list("lease_expires_at", flat=True).get(pk=job.pk))

    done = services.execute(job.pk, on_progress=watch)
    assert done.state == Job.State.SUCCEEDED and done.lease_expires_at is None
    # Runs for several leases' length; the lease kept moving and never ran out while it did.
    assert len(set(leases)) > 1


def test_the_reconciler_sends_stale_jobs_only(trained_version, settings):
    from imagegen.jobcore.reconcile import stale_jobs

    product = trained_version.test_products[0]
    fresh = request_generation(product, count=1, seed=0, send=False)
    stale = request_generation(product, count=1, seed=1, send=False)
    Job.objects.filter(pk=stale.pk).update(updated_at=timezone.now() - timedelta(seconds=settings.IMAGEGEN_RECONCILE_QUEUED_AFTER + 5))
    lost = request_generation(product, count=1, seed=2, send=False)
    claim(lost.pk)
    expire_lease(lost)
    assert list(stale_jobs().values_list("pk", flat=True)) == [stale.pk, lost.pk]
    assert fresh.pk not in stale_jobs().values_list("pk", flat=True)


# --- on the real parts ----------------------------------------------------------------------------------


@pytest.mark.integration
def test_a_sigkilled_worker_s_job_is_finished_by_another_worker_exactly_once(
    worker, make_products, settings, redis_url, worker_media, output_dir
):
    """Worker A dies by SIGKILL in the middle of a training job; after its lease runs out the reconciler
    sends the job again and worker B finishes it: one model version, two attempts."""
    queue = "gpu-faults"
    settings.IMAGEGEN_QUEUE = queue
    settings.IMAGEGEN_TRAIN_QUEUE = queue
    lease = {"IMAGEGEN_JOB_LEASE_SECONDS": "3"}
    a = start_worker(redis_url, worker_media, output_dir / "worker-a.log", name="imagegen-a@%h", queue=queue, env=lease)
    products = make_products({"dress": 5, "hat": 4})
    from django.db import transaction

    try:
        with transaction.atomic():
            job = request_training([p.pk for p in products], steps=400, batch_size=4, device="cpu")
        deadline = time.monotonic() + 120
        while Job.objects.get(pk=job.pk).progress < 10:
            assert time.monotonic() < deadline, "worker A never got going"
            time.sleep(0.2)
    finally:
        # Killed either way: a worker left behind would take the next run's jobs from this queue.
        os.killpg(a.pid, signal.SIGKILL)
        a.wait(timeout=30)
        a.log.close()
    assert Job.objects.get(pk=job.pk).state == Job.State.RUNNING  # nobody knows yet

    b = start_worker(redis_url, worker_media, output_dir / "worker-b.log", name="imagegen-b@%h", queue=queue, env=lease)
    try:
        deadline = time.monotonic() + 30
        while Job.objects.get(pk=job.pk).lease_expires_at > timezone.now():
            assert time.monotonic() < deadline
            time.sleep(0.5)
        assert services.reconcile()["sent"] == 1
        done = wait_for_job(job.pk)
    finally:
        stop_worker(b)
    assert done.state == Job.State.SUCCEEDED, done.error
    assert done.attempts == 2 and done.worker.startswith(os.uname().nodename)
    assert ModelVersion.objects.filter(jobs=done).count() == 1 and ModelVersion.objects.exclude(kind="features").count() == 1


@pytest.mark.integration
def test_an_unreachable_broker_still_answers_202_and_the_job_runs_once_it_is_back(worker, trained_version, staff_user, client, settings):
    from shop.celery import app

    product = trained_version.test_products[0]
    client.force_login(staff_user)
    good_url = app.conf.broker_url

    def point_broker_at(url):
        # Connection pools are looked up by broker URL: dropping the cached ones makes the next send connect anew.
        app.conf.broker_url = url
        app._pool = None
        app.amqp._producer_pool = None

    point_broker_at("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        started = time.monotonic()
        reply = client.post(f"/api/products/{product.pk}/generate/", {"count": 1, "seed": 3}, content_type="application/json")
        took = time.monotonic() - started
    finally:
        point_broker_at(good_url)
    assert reply.status_code == 202, reply.content
    job = Job.objects.get(pk=reply.json()["id"])
    assert job.state == Job.State.QUEUED and took < 15
    time.sleep(1)
    assert Job.objects.get(pk=job.pk).state == Job.State.QUEUED  # it really was not sent

    settings.IMAGEGEN_RECONCILE_QUEUED_AFTER = 0
    assert services.reconcile()["sent"] >= 1
    done = wait_for_job(job.pk)
    assert done.state == Job.State.SUCCEEDED and GeneratedImage.objects.filter(job=job).count() == 1
