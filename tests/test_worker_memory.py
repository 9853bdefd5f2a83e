"""A real worker process and its memory: the model is loaded once per worker process (in the forked
child, on first use), and running out of memory fails or shrinks a job without taking the worker down.

Memory really runs out here: the test lowers the worker child's address-space limit (RLIMIT_AS) to what
it uses plus a margin, so PyTorch's allocator refuses the large batches exactly as on a full machine."""
import re
import resource
import time
from pathlib import Path

import pytest
import torch
from django.db import transaction
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from imagegen.models import GeneratedImage, Job, ModelVersion
from imagegen.services import request_generation, request_training
from imagegen.jobcore.errors import JobError
from imagegen.services.memory import is_out_of_memory, shrinking_batches
from imagegen.services.model_registry import load_sampler

from .conftest import start_worker, stop_worker, wait_for_job

HEADROOM = 384 * 2**20


def pool_child(proc) -> int:
    """The pid of the prefork pool's one child process (the one that runs tasks)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.2)
    raise AssertionError("the worker has no pool process")


def address_space(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


def loads_logged(log: Path) -> list[tuple[str, str]]:
    # Celery's own formatted line only (the imagegen logger's console handler prints each message too).
    return re.findall(r"\] model version (\d+) loaded into process (\d+)", log.read_text())


def run_generation(product, **options) -> Job:
    with transaction.atomic():
        job = request_generation(product, **options)
    return wait_for_job(job.pk, timeout=300)


@pytest.mark.integration
def test_models_load_once_per_worker_process_and_memory_exhaustion_does_not_stop_it(
    worker, trained_version, make_products, settings, redis_url, worker_media, output_dir
):
    queue = "gpu-memory"
    settings.IMAGEGEN_QUEUE = queue
    settings.IMAGEGEN_TRAIN_QUEUE = queue
    settings.IMAGEGEN_MAX_IMAGES_PER_JOB = 2048
    log = output_dir / "worker-memory.log"
    # A fixed mmap threshold makes glibc give large freed blocks back at once, so the address space the
    # limit counts is what the process really uses (by default freed blocks up to 32 MB stay mapped).
    # The 2,048 images of one job may share a forward pass (cross-job batching caps passes at 64 by default).
    env = {"MALLOC_MMAP_THRESHOLD_": str(1 << 20), "IMAGEGEN_INFERENCE_MAX_BATCH": "2048"}
    proc = start_worker(redis_url, worker_media, log, name="imagegen-memory@%h", queue=queue, env=env)
    try:
        product = trained_version.test_products[0]
        child = pool_child(proc)
        assert not loads_logged(log), "nothing is loaded at start, least of all in the parent before the fork"

        for seed in (0, 10, 20):
            assert run_generation(product, count=2, seed=seed).state == Job.State.SUCCEEDED
        assert loads_logged(log) == [(str(trained_version.pk), str(child))], "one load, in the pool child"

        # From here on the child may use only what it holds now plus HEADROOM.
        limit = address_space(child) + HEADROOM
        resource.prlimit(child, resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))

        # 2,048 images in one pass need several GB; the job goes on in smaller batches.
        big = run_generation(product, count=2048, seed=1000)
        assert big.state == Job.State.SUCCEEDED, big.error
        assert GeneratedImage.objects.filter(job=big).count() == 2048
        assert re.search(r"Out of main memory .* at batch size 2048; retrying with 1024", log.read_text())
        # Each image depends on its seed only: the ones made in small batches are the ones made alone.
        sampler = load_sampler(trained_version)
        for seed in (1000, 3047):
            stored = GeneratedImage.objects.get(job=big, seed=seed)
            with stored.image.open("rb") as fh:
                got = pil_to_tensor(Image.open(fh).convert("RGB")).short()
            alone = sampler.generate_for([seed], category=trained_version.categories[0])[0]
            want = pil_to_tensor(alone.convert("RGB")).short()
            assert (got - want).abs().max() <= 2

        # Training with a batch of 4,096 at 64 px does not fit either; it starts again with smaller ones.
        # (The same headroom over what the process holds now: the big job left its heap larger.)
        resource.prlimit(child, resource.RLIMIT_AS, (address_space(child) + HEADROOM, resource.RLIM_INFINITY))
        others = make_products({"skirt": 5, "hat": 4})
        with transaction.atomic():
            job = request_training([p.pk for p in others], steps=2, batch_size=4096, device="cpu")
        trained = wait_for_job(job.pk, timeout=600)
        assert trained.state == Job.State.SUCCEEDED, trained.error
        version = ModelVersion.objects.get(jobs=trained)
        assert 8 <= version.metrics["batch_size"] < 4096
        assert re.search(r"Out of main memory .* at batch size 4096; retrying", log.read_text())

        # Same process, still serving, and the first model is still loaded (no second load).
        assert run_generation(product, count=2, seed=50).state == Job.State.SUCCEEDED
        assert pool_child(proc) == child, "the pool process was not replaced"
        assert loads_logged(log)[0] == (str(trained_version.pk), str(child))
        assert [pid for _, pid in loads_logged(log)] == [str(child)] * len(loads_logged(log))
    finally:
        stop_worker(proc)


def test_a_job_that_cannot_fit_even_the_smallest_batch_fails_with_the_reason():
    """The allocator really refuses (2 TB per batch item); halving stops at the smallest batch."""
    tried = []

    def allocate(batch: int):
        tried.append(batch)
        return torch.empty(batch, 2**39, dtype=torch.uint8)

    with pytest.raises(JobError, match=r"Out of main memory \(.*can't allocate memory.*\) even with batches of 8"):
        shrinking_batches(allocate, 64, smallest=8)
    assert tried == [64, 32, 16, 8]


def test_only_out_of_memory_errors_are_retried():
    calls = []

    def broken(batch: int):
        calls.append(batch)
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        shrinking_batches(broken, 64, smallest=1)
    assert calls == [64]
    try:
        torch.empty(2**45, dtype=torch.uint8)
    except RuntimeError as exc:
        assert is_out_of_memory(exc)
    assert is_out_of_memory(MemoryError()) and not is_out_of_memory(ValueError("out of range"))
