"""The services layer, run in-process: validation, the job state machine, generation and training."""
import hashlib

import numpy as np
import pytest
from PIL import Image
from django.core.exceptions import ValidationError

from imagegen import services
from imagegen.models import GeneratedImage, Job, ModelVersion
from imagegen.services import model_registry
from imagegen.services.generation import request_generation
from imagegen.services.training import request_training

pytestmark = pytest.mark.slow


def image_digests(product) -> list[str]:
    digests = []
    for row in GeneratedImage.objects.filter(product=product).order_by("seed", "id"):
        with row.image.open("rb") as fh:
            digests.append(hashlib.sha256(fh.read()).hexdigest())
    return digests


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"count": 0}, "count"),
        ({"count": 17}, "count"),
        ({"count": "3"}, "count"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**31}, "seed"),
        ({"kind": "nope"}, "kind"),
    ],
)
def test_request_generation_rejects_bad_parameters_and_creates_nothing(make_products, kwargs, field):
    (product,) = make_products({"hat": 1})
    with pytest.raises(ValidationError) as error:
        request_generation(product, **kwargs)
    assert field in error.value.message_dict
    assert not Job.objects.exists()


def test_generate_job_attaches_reproducible_images(trained_version):
    product = trained_version.test_products[0]
    first = request_generation(product, count=3, seed=5)
    job = services.execute(first.pk)
    assert job.state == Job.State.SUCCEEDED and job.progress == 100 and job.model_version == trained_version
    assert GeneratedImage.objects.filter(job=job).count() == 3

    other = trained_version.test_products[1]  # same category, same seed: the same pictures
    services.execute(request_generation(other, count=3, seed=5).pk)
    assert image_digests(product) == image_digests(other)

    services.execute(request_generation(other, count=1, seed=6).pk)
    # Image i of a job uses seed + i, so a single image with seed 6 equals the second image of the first job
    # (batched and single passes may round a pixel differently: at most 1 level of 255 apart).
    seeds6 = GeneratedImage.objects.filter(product=other, seed=6).order_by("id")
    with seeds6[0].image.open("rb") as a, seeds6[1].image.open("rb") as b:
        single, batched = (np.asarray(Image.open(f).convert("RGB"), dtype=np.int16) for f in (a, b))
    assert np.abs(single - batched).max() <= 1


def test_generated_files_carry_their_provenance_in_xmp(trained_version):
    from imagegen.services.provenance import GENERATED, PNG_XMP_KEY

    product = trained_version.test_products[0]
    services.execute(request_generation(product, count=1, seed=12).pk)
    row = GeneratedImage.objects.get(product=product)
    with row.image.open("rb") as fh:
        xmp = Image.open(fh).info[PNG_XMP_KEY]
    assert f"<Iptc4xmpExt:DigitalSourceType>{GENERATED}</Iptc4xmpExt:DigitalSourceType>" in xmp
    assert GENERATED.endswith("/trainedAlgorithmicMedia")
    assert f"model version {trained_version.pk} " in xmp and "seed 12." in xmp
    assert row.model_version == trained_version and row.seed == 12


def test_execute_claims_a_job_once(trained_version):
    job = request_generation(trained_version.test_products[0], count=1, seed=0)
    assert services.execute(job.pk).state == Job.State.SUCCEEDED
    assert services.execute(job.pk) is None  # a duplicate delivery finds nothing to claim
    job.refresh_from_db()
    assert job.attempts == 1 and GeneratedImage.objects.filter(job=job).count() == 1


def test_cancelled_job_is_not_run(trained_version):
    job = request_generation(trained_version.test_products[0], count=2)
    assert services.cancel(job)
    assert services.execute(job.pk) is None
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED and not job.images.exists()
    assert not services.cancel(job)  # finished jobs stay as they are


def test_no_model_for_the_category_fails_with_a_reason(trained_version, make_products):
    (skirt,) = make_products({"skirt": 1})
    job = services.execute(request_generation(skirt, count=2).pk)
    assert job.state == Job.State.FAILED
    assert job.error.startswith("No trained generator covers the category “skirt” yet.")
    assert not GeneratedImage.objects.exists()


def test_failure_while_storing_leaves_no_rows_and_no_files(trained_version, monkeypatch, settings):
    from pathlib import Path

    product = trained_version.test_products[0]
    saves = {"n": 0}
    original = GeneratedImage.save

    def flaky_save(self, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] == 3:
            raise OSError("disk full")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(GeneratedImage, "save", flaky_save)
    job = services.execute(request_generation(product, count=4, seed=1).pk)

    assert job.state == Job.State.FAILED and "disk full" in job.error
    assert not GeneratedImage.objects.exists()
    image_dir = Path(settings.MEDIA_ROOT) / "imagegen" / "images"
    assert not image_dir.exists() or not any(p.is_file() for p in image_dir.rglob("*"))


def test_training_job_registers_and_activates_a_version_and_retires_the_one_it_covers(trained_version, make_products):
    extra = make_products({"hat": 4})
    products = [*trained_version.test_products, *extra]
    job = request_training([p.pk for p in products], steps=3, batch_size=8, seed=3, device="cpu")
    job = services.execute(job.pk)

    assert job.state == Job.State.SUCCEEDED, job.error
    version = job.model_version
    # One product of each 6-product category is held out of training (10% rounded); none of the 4 hats.
    assert version.categories == ["dress", "hat", "shoes"] and version.image_count == 14
    assert version.metrics["held_out_photos"] == 2
    assert version.metrics["steps"] == 3 and version.package_version
    trained_version.refresh_from_db()
    assert version.is_active and not trained_version.is_active
    assert services.version_for("cgan", "hat") == version


def test_training_refuses_too_few_photos(make_products):
    products = make_products({"hat": 2})
    job = services.execute(request_training([p.pk for p in products], steps=2, device="cpu").pk)
    assert job.state == Job.State.FAILED
    assert "Only 2 readable photos" in job.error
    assert not ModelVersion.objects.exists()


def test_training_skips_unreadable_photos(make_products, settings):
    from pathlib import Path

    from imagegen.services import held_out
    from imagegen.services.products import product_photos

    products = make_products({"dress": 9})
    # A training photo, not the held-out one (which product is held out depends on its id).
    trained, _ = held_out.split(list(product_photos([p.pk for p in products])))
    broken = Path(settings.MEDIA_ROOT) / trained[0].name
    broken.write_bytes(b"<html>not a photo</html>")
    job = services.execute(request_training([p.pk for p in products], steps=2, batch_size=4, device="cpu").pk)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.model_version.image_count == 8 and job.model_version.metrics["skipped_photos"] == 1


def test_request_training_validates(make_products):
    products = make_products({"dress": 1})
    with pytest.raises(ValidationError) as error:
        request_training([p.pk for p in products], image_size=100)
    assert "image_size" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        request_training([], steps=3)
    assert "products" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        request_training([p.pk for p in products], resume_from=999)
    assert "resume_from" in error.value.message_dict
    assert not Job.objects.exists()


def test_review_and_visibility(trained_version, staff_user, django_user_model):
    product = trained_version.test_products[0]
    services.execute(request_generation(product, count=2, seed=0).pk)
    first, second = GeneratedImage.objects.filter(product=product).order_by("seed")
    assert services.review(first, "approved", staff_user) == 1
    assert services.review(GeneratedImage.objects.filter(pk=second.pk), "rejected") == 1
    with pytest.raises(ValueError):
        services.review(first, "maybe")
    shopper = django_user_model.objects.create_user("shopper", password="x")
    assert list(services.visible_images(product.pk, shopper)) == [first]
    assert list(services.visible_images(product.pk, None)) == [first]
    assert set(services.visible_images(product.pk, staff_user)) == {first, second}


def test_sampler_is_loaded_once_per_process(trained_version, monkeypatch):
    from mlcore.gan.sampler import Sampler

    model_registry.clear_cache()
    loads = {"n": 0}
    original = Sampler.from_checkpoint.__func__

    def counting(cls, *args, **kwargs):
        loads["n"] += 1
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Sampler, "from_checkpoint", classmethod(counting))
    for seed in (1, 2, 3):
        services.execute(request_generation(trained_version.test_products[0], count=1, seed=seed).pk)
    assert loads["n"] == 1


@pytest.mark.parametrize("kind", ["vae", "cvae", "ddpm"])
def test_other_kinds_train_and_generate_through_the_same_services(make_products, kind):
    products = make_products({"dress": 5, "hat": 4})
    job = services.execute(request_training([p.pk for p in products], kind=kind, steps=3, batch_size=4, device="cpu").pk)
    assert job.state == Job.State.SUCCEEDED, job.error
    version = job.model_version
    terms = {"ddpm": {"loss"}}.get(kind, {"recon", "kl"})
    assert version.kind == kind and version.config["kind"] == kind and set(version.metrics) >= terms
    assert services.version_for("cgan", "dress") is None  # kinds do not stand in for each other

    generated = services.execute(request_generation(products[0], count=2, seed=9, kind=kind).pk)
    assert generated.state == Job.State.SUCCEEDED, generated.error
    rows = GeneratedImage.objects.filter(job=generated).order_by("seed")
    assert [r.seed for r in rows] == [9, 10] and all(r.model_version == version for r in rows)
    assert all(0.0 <= r.quality_score <= 1.0 and (r.width, r.height) == (64, 64) for r in rows)
