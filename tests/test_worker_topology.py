"""Worker topology: jobs go to the queue of their kind of work, an inference worker's pool process loads the
active models before its first job (and keeps them), and a light worker never loads torch."""
import re
import time
from pathlib import Path

import pytest
from django.db import transaction

from imagegen.models import Job
from imagegen.services import request_generation, request_training
from imagegen.jobcore.creating import queue_for

from .conftest import start_worker, stop_worker, wait_for_job
from .test_worker_memory import loads_logged, pool_child


def test_each_kind_of_job_goes_to_its_queue(settings):
    settings.IMAGEGEN_QUEUE, settings.IMAGEGEN_TRAIN_QUEUE = "infer-q", "train-q"
    assert queue_for(Job.Kind.GENERATE) == queue_for(Job.Kind.EDIT) == "infer-q"
    assert queue_for(Job.Kind.TRAIN) == "train-q"


@pytest.mark.django_db(transaction=True)
def test_jobs_are_sent_to_the_queue_of_their_kind(make_products, settings, redis_url):
    """Real messages in Redis: a generate job lands on the inference queue, a training job on the training queue."""
    from kombu import Exchange, Queue

    from shop.celery import app

    suffix = f"{time.monotonic_ns()}"
    settings.IMAGEGEN_QUEUE, settings.IMAGEGEN_TRAIN_QUEUE = f"infer-{suffix}", f"train-{suffix}"
    queues = [Queue(name, Exchange(name), routing_key=name) for name in (settings.IMAGEGEN_QUEUE, settings.IMAGEGEN_TRAIN_QUEUE)]
    products = make_products({"dress": 2})
    try:
        with app.connection_for_write() as conn:
            for queue in queues:
                queue(conn.default_channel).declare()
        with transaction.atomic():
            request_generation(products[0], count=1, seed=1)
            request_generation(products[1], count=1, seed=2)
            request_training([p.pk for p in products], steps=2)
        with app.connection_for_write() as conn:
            counts = [queue(conn.default_channel).queue_declare(passive=True).message_count for queue in queues]
        assert counts == [2, 1]
    finally:
        with app.connection_for_write() as conn:
            for queue in queues:
                queue(conn.default_channel).delete()


def maps_torch(pid: int) -> bool:
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.integration
def test_inference_worker_warms_the_active_model_and_a_light_worker_loads_no_torch(
    worker, trained_version, settings, redis_url, worker_media, output_dir
):
    queue = f"gpu-warm-{time.monotonic_ns()}"
    settings.IMAGEGEN_QUEUE = queue
    log = output_dir / "worker-warm.log"
    warm = start_worker(
        redis_url, worker_media, log, name="imagegen-warm@%h", queue=queue, env={"IMAGEGEN_WARM_MODELS": "1", "IMAGEGEN_QUEUE": queue}
    )
    light_log = output_dir / "worker-light.log"
    light = start_worker(redis_url, worker_media, light_log, name="imagegen-light@%h", queue="default")
    try:
        child = pool_child(warm)
        deadline = time.monotonic() + 60
        while not loads_logged(log) and time.monotonic() < deadline:
            time.sleep(0.2)
        # Loaded by the pool process before any job was sent.
        assert loads_logged(log) == [(str(trained_version.pk), str(child))]
        assert re.search(rf"imagegen worker process {child} \(pool index 0\) uses cpu", log.read_text())

        product = trained_version.test_products[0]
        with transaction.atomic():
            job = request_generation(product, count=2, seed=3)
        job = wait_for_job(job.pk, timeout=120)
        assert job.state == Job.State.SUCCEEDED, job.error
        assert job.images.count() == 2
        assert loads_logged(log) == [(str(trained_version.pk), str(child))], "the job loaded the model again"
        assert maps_torch(child)

        light_child = pool_child(light)
        assert not maps_torch(light_child), "a worker on the light queue alone imported torch"
        assert "uses cpu" not in light_log.read_text()
    finally:
        stop_worker(warm)
        stop_worker(light)
