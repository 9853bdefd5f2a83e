"""Cross-job batching of generate jobs and the inference fast path.

Batched and unbatched generation give the same images for the same seeds: at most 2 levels of 255 apart
per channel (batched kernels may round a pixel differently; on the CPU the fast path stays fp32). The
service tests drive services.batching on PostgreSQL; the last test goes through a real Celery worker.
"""
import numpy as np
import pytest
import torch
from django.db import transaction

from imagegen import services
from imagegen.models import GeneratedImage, Job
from imagegen.services.generation import request_generation
from mlcore.seeding import build_seeded
from mlcore.inference import FastPath, InferenceOptions
from mlcore.gan.sampler import Sampler as GANSampler
from mlcore.gan.config import GANConfig
from mlcore.textgan.config import TextGANConfig
from mlcore.textgan.sampler import Sampler as TextSampler

from .conftest import wait_for_job

pytestmark = pytest.mark.slow

TOLERANCE = 2  # levels of 255
CLASSES = ["dress", "hat", "shoes"]


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def untrained(sampler_class, config, seed: int = 0):
    """A real sampler with seeded (untrained) weights: what is compared does not depend on training."""
    generator = build_seeded(lambda: sampler_class.GENERATOR(config), seed)
    discriminator = build_seeded(lambda: sampler_class.DISCRIMINATOR(config), seed + 1)
    return sampler_class(config, generator, discriminator, package_version="test", step=0, device=torch.device("cpu"))


def tcgan_config() -> TextGANConfig:
    colours = ["red", "blue", "green"]
    attributes = [{"colour": c, "material": m} for c in colours for m in ("wool", "cotton")] * 2
    texts = [f"{a['colour']} {a['material']} {cls}" for a, cls in zip(attributes, CLASSES * 4)]
    return TextGANConfig.for_training(classes=CLASSES, image_size=64, attributes=attributes, texts=texts, g_width=8, d_width=8)


MIXED = [
    {"category": "dress", "attributes": {"colour": "red", "material": "wool"}, "text": "red wool dress"},
    {"category": "shoes", "attributes": {"colour": "blue"}, "text": "blue cotton shoes"},
    {"category": "hat", "attributes": {}, "text": ""},
    {"category": "dress", "attributes": {"colour": "green"}, "text": "green dress"},
]


@pytest.mark.parametrize("kind", ["cgan", "tcgan"])
def test_a_mixed_batched_pass_gives_each_image_its_own_products_picture(kind):
    sampler = untrained(GANSampler, GANConfig(classes=CLASSES, image_size=64, g_width=8, d_width=8)) if kind == "cgan" \
        else untrained(TextSampler, tcgan_config())
    seeds = [3, 3, 17, 2**31 - 5]  # the same seed for two products: their pictures must still differ
    conditions = MIXED
    batched = sampler.generate_each(seeds, conditions)
    alone = [sampler.generate_for([seed], **condition)[0] for seed, condition in zip(seeds, conditions)]

    for one_pass, single in zip(batched, alone):
        assert np.abs(pixels(one_pass) - pixels(single)).max() <= TOLERANCE
    assert np.abs(pixels(batched[0]) - pixels(batched[1])).max() > 20  # product conditions do reach the pass
    assert [img.info["mlcore_class"] for img in batched] == [c["category"] for c in conditions]
    with pytest.raises(ValueError, match="one description per seed"):
        sampler.generate_each(seeds, conditions[:2])


def test_the_cpu_fast_path_is_fp32_and_its_options_keep_the_pictures():
    sampler = untrained(GANSampler, GANConfig(classes=CLASSES, image_size=64, g_width=8, d_width=8))
    seeds = list(range(5))
    plain = [pixels(i) for i in sampler.generate_each(seeds, MIXED + MIXED[:1])]

    path = FastPath(torch.device("cpu"), InferenceOptions())
    assert path.describe() == {"device": "cpu", "precision": "fp32", "channels_last": False, "compile": "off", "chunk": 64}
    # Asking for bf16 on the CPU stays fp32 (exact); channels-last and a small chunk only change rounding.
    sampler.set_inference(InferenceOptions(precision="bf16", channels_last="on", chunk=2))
    assert sampler.fast.describe()["precision"] == "fp32" and sampler.fast.channels_last
    fast = [pixels(i) for i in sampler.generate_each(seeds, MIXED + MIXED[:1])]
    assert max(np.abs(a - b).max() for a, b in zip(plain, fast)) <= TOLERANCE
    with pytest.raises(ValueError, match="compile must be one of"):
        InferenceOptions(compile="fast")


def test_padding_a_compiled_pass_drops_the_padding_rows():
    from mlcore.inference import _padded_size

    assert [_padded_size(n, 64) for n in (1, 2, 3, 5, 33, 64)] == [1, 2, 4, 8, 64, 64]
    assert _padded_size(100, 64) == 64


# --- services on PostgreSQL ------------------------------------------------------------------------


def single_jobs(products, seeds) -> list[Job]:
    return [request_generation(p, count=1, seed=s, send=False) for p, s in zip(products, seeds)]


def job_images(job) -> list[GeneratedImage]:
    return list(GeneratedImage.objects.filter(job=job).order_by("seed"))


def test_execute_many_makes_jobs_in_passes_no_larger_than_max_batch(trained_version, settings):
    settings.IMAGEGEN_INFERENCE_MAX_BATCH = 3
    products = trained_version.test_products  # 6 dresses then 6 shoes: one model, mixed products in a pass
    jobs = single_jobs(products[4:10], range(40, 46)) + [request_generation(products[0], count=2, seed=7, send=False)]

    done = services.execute_many([j.pk for j in jobs])

    assert [j.pk for j in done] == [j.pk for j in jobs] and all(j.state == Job.State.SUCCEEDED for j in done)
    passes = {}
    for job in jobs:
        images = job_images(job)
        assert [i.seed for i in images] == ([7, 8] if job.parameters["count"] == 2 else [job.parameters["seed"]])
        assert {i.product_id for i in images} == {job.product_id}
        for image in images:
            where = image.parameters["batch"]
            passes.setdefault(where["pass"], []).append(where)
    assert max(w["pass_images"] for ws in passes.values() for w in ws) <= 3
    assert all(len(ws) == ws[0]["pass_images"] for ws in passes.values())
    assert len(passes) == 3  # 8 images in passes of 3, 3 and 2 (the 2-image job did not fit the second)
    assert Job.objects.get(pk=jobs[0].pk).message.startswith("Done (its images shared a pass with up to 2 other")

    # Each batched image is what the job alone makes from its seed.
    alone = services.execute(request_generation(products[6], count=1, seed=42, send=False).pk)
    batched = GeneratedImage.objects.get(job=jobs[2])
    with batched.image.open("rb") as a, job_images(alone)[0].image.open("rb") as b:
        from PIL import Image

        assert np.abs(pixels(Image.open(a)) - pixels(Image.open(b))).max() <= TOLERANCE


def test_a_gathered_job_that_fails_fails_alone_and_a_cancelled_one_stays_cancelled(trained_version, make_products):
    (skirt,) = make_products({"skirt": 1})
    dress, shoes = trained_version.test_products[0], trained_version.test_products[7]
    first = request_generation(dress, count=2, seed=1, send=False)
    no_model = request_generation(skirt, count=1, seed=2, send=False)
    cancelled = request_generation(shoes, count=1, seed=3, send=False)
    other = request_generation(shoes, count=1, seed=4, send=False)
    services.cancel(cancelled)

    job = services.execute(first.pk, gather=True)

    assert job.state == Job.State.SUCCEEDED and [i.seed for i in job_images(job)] == [1, 2]
    no_model.refresh_from_db(), cancelled.refresh_from_db(), other.refresh_from_db()
    assert no_model.state == Job.State.FAILED and no_model.attempts == 1
    assert no_model.error.startswith("No trained generator covers the category “skirt” yet.")
    assert cancelled.state == Job.State.CANCELLED and cancelled.attempts == 0 and not job_images(cancelled)
    assert other.state == Job.State.SUCCEEDED and [i.seed for i in job_images(other)] == [4]
    shared = {i.parameters["batch"]["pass"] for i in job_images(job) + job_images(other)}
    assert len(shared) == 1 and job_images(other)[0].parameters["batch"] == {**job_images(other)[0].parameters["batch"], "pass_images": 3, "pass_jobs": 2}
    assert services.execute(other.pk) is None  # its own message later finds nothing to claim


def test_a_job_cancelled_after_its_claim_is_left_cancelled_and_the_others_of_its_pass_finish(trained_version):
    from imagegen.jobcore.execution import run_claimed
    from imagegen.jobcore.runners import Claimed, runner_for
    from imagegen.jobcore.states import claim

    kept, dropped = single_jobs(trained_version.test_products[:2], [8, 9])
    held = [Claimed(job.pk, claim(job.pk)) for job in (kept, dropped)]
    services.cancel(dropped)  # while it waits for its pass

    run_claimed(runner_for(Job.Kind.GENERATE), held)

    kept.refresh_from_db(), dropped.refresh_from_db()
    assert kept.state == Job.State.SUCCEEDED and [i.seed for i in job_images(kept)] == [8]
    assert dropped.state == Job.State.CANCELLED and dropped.message == "Cancelled" and not job_images(dropped)


def test_gathering_is_off_at_max_batch_one(trained_version, settings):
    settings.IMAGEGEN_INFERENCE_MAX_BATCH = 1
    first, second = single_jobs(trained_version.test_products[:2], [5, 6])
    assert services.execute(first.pk, gather=True).state == Job.State.SUCCEEDED
    second.refresh_from_db()
    assert second.state == Job.State.QUEUED


def test_bad_inference_settings_are_reported_by_system_checks(settings):
    from imagegen.checks import check_inference

    assert check_inference() == []
    settings.IMAGEGEN_INFERENCE_MAX_BATCH = 0
    settings.IMAGEGEN_INFERENCE_PRECISION = "fp8"
    settings.IMAGEGEN_INFERENCE_COMPILE = True
    assert [e.id for e in check_inference()] == ["imagegen.E018", "imagegen.E019", "imagegen.E020"]


# --- a real Celery worker on Redis -----------------------------------------------------------------


@pytest.mark.integration
def test_a_real_worker_makes_jobs_queued_together_in_fewer_passes_than_jobs(worker, trained_version):
    products = trained_version.test_products
    # One transaction: the twelve messages go to Redis when it commits, with every row already visible.
    with transaction.atomic():
        jobs = [request_generation(products[i], count=1, seed=100 + i) for i in range(12)]

    done = [wait_for_job(job.pk) for job in jobs]

    assert all(job.state == Job.State.SUCCEEDED for job in done), [j.error for j in done]
    passes = set()
    for job in done:
        (image,) = job_images(job)
        assert image.seed == job.parameters["seed"] and image.product_id == job.product_id
        assert job.attempts == 1 and job.model_version == trained_version
        passes.add(image.parameters["batch"]["pass"])
    assert len(passes) < len(jobs)
    assert max(i.parameters["batch"]["pass_jobs"] for i in GeneratedImage.objects.filter(job__in=jobs)) > 1
