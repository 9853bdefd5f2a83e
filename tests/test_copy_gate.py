"""Near copies of training photos (issue 14): the version gate is a rate test against held-out real photos, each
generated image is checked before it is attached, rollback by activation, the demo's own check, and the R1 switch."""
import io
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from PIL import Image, ImageChops, ImageEnhance

from imagegen.models import GeneratedImage, ModelVersion
from mlcore.metrics.copy_gate import binomial_greater, fisher_greater, rate_test

from .conftest import DEMO_CATALOGUE

pytestmark = pytest.mark.slow

CATEGORIES = ("dress", "shoes", "pants", "shirt")
# 30 of each category's 40 demo photos are products (3 of them held out by training); the other 10 are the
# "new real photos". The version gate's power grows with the held-out count: 12 here.
PRODUCTS_PER_CATEGORY = 30


def test_the_tests_tails_match_hand_computed_values():
    # 3 hits, all 3 in group a of 3 + 3: 1 / C(6, 3).
    assert fisher_greater(3, 3, 0, 3) == pytest.approx(1 / 20)
    assert fisher_greater(2, 3, 0, 3) == pytest.approx(4 / 20)
    assert fisher_greater(0, 10, 5, 10) == 1.0
    assert binomial_greater(2, 10, 0.01) == pytest.approx(1 - 0.99**10 - 10 * 0.01 * 0.99**9)
    # The demo's old refusal: 1 flagged sample of 500 is no evidence against 0 of 40 held-out photos.
    one = rate_test(1, 500, 0, 40)
    assert one["p_value"] == pytest.approx(500 / 540) and not one["significant"]
    assert rate_test(60, 500, 0, 40)["significant"]
    assert "binomial" in rate_test(20, 500, 0, 0)["test"] and rate_test(20, 500, 0, 0)["significant"]


# --- the version gate on real photos, with stand-in generators whose samples are chosen photos -------------


class PhotoSampler:
    """A "generator" whose sample for seed s of a category is that category's photo s mod n."""

    def __init__(self, photos: dict[str, list[Image.Image]]) -> None:
        self.photos = photos

    def generate_seeds(self, category: str, seeds: list[int]) -> list[Image.Image]:
        own = self.photos[category]
        return [own[seed % len(own)] for seed in seeds]


def jittered(image: Image.Image, index: int) -> Image.Image:
    """A lightly edited copy: shifted by 2-4 px, brightness x0.96 or x1.04, re-encoded as JPEG at quality 90."""
    edited = ImageChops.offset(image, 2 + index % 3, 2 + (index + 1) % 3)
    edited = ImageEnhance.Brightness(edited).enhance(0.96 if index % 2 else 1.04)
    buf = io.BytesIO()
    edited.save(buf, format="JPEG", quality=90)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.fixture
def selection(make_products):
    """120 catalogue products split as training does (3 per category held out), with the feature extractor a
    training job trains for itself."""
    from imagegen.services import held_out
    from imagegen.services.evaluation import ensure_feature_extractor
    from imagegen.services.products import product_photos
    from imagegen.services.training_sets import load_training_set

    products = make_products({category: PRODUCTS_PER_CATEGORY for category in CATEGORIES})
    train, held = held_out.split(list(product_photos([p.pk for p in products])))
    assert len(held) == 3 * len(CATEGORIES)
    data = load_training_set(train, 64)
    data.held_out = held
    return data, ensure_feature_extractor(data, device="cpu")


def _decide(data, extractor_pair, sampler):
    from imagegen.services.evaluation import activation_decision, evaluate_after_training

    version = ModelVersion(kind="cgan", categories=data.classes, config={"image_size": 64})
    measured = evaluate_after_training(version, sampler, data, extractor_pair, per_class=50)
    version.metrics = {"evaluation": measured.report}
    return activation_decision(version), measured


def _training_photos(data) -> dict[str, list[Image.Image]]:
    photos: dict[str, list[Image.Image]] = {}
    for source in data.sources:
        with source.open() as fh:
            photos.setdefault(source.category, []).append(Image.open(fh).convert("RGB"))
    return photos


def test_a_generator_as_good_as_new_real_photos_is_activated(selection):
    data, extractor_pair = selection
    # Catalogue photos of the same categories that are not among the selected products.
    new = {
        category: [Image.open(p).convert("RGB") for p in sorted((DEMO_CATALOGUE / category).glob("*.jpg"))[PRODUCTS_PER_CATEGORY:]]
        for category in CATEGORIES
    }
    (activate, reason), measured = _decide(data, extractor_pair, PhotoSampler(new))
    copies = measured.report["near_copies"]
    assert activate, reason
    assert not copies["significant"] and copies["held_out_total"] == 12 and copies["generated_total"] == 200
    assert measured.report["real_dir"] == "held-out photos" and measured.report["overall"]["count_real"] == 12


@pytest.mark.parametrize("edit", ["exact", "jittered"])
def test_a_generator_that_reproduces_training_photos_is_refused_with_the_reason(selection, edit):
    data, extractor_pair = selection
    photos = _training_photos(data)
    if edit == "jittered":
        photos = {category: [jittered(p, i) for i, p in enumerate(own)] for category, own in photos.items()}
    (activate, reason), measured = _decide(data, extractor_pair, PhotoSampler(photos))
    copies = measured.report["near_copies"]
    assert not activate
    assert "near copies of training photos more often than real photos are by chance" in reason
    assert copies["significant"] and copies["p_value"] < 0.01 and copies["flagged"] > (199 if edit == "exact" else 60)
    # The version's page shows each flagged sample beside its nearest training photo.
    sheet = Image.open(io.BytesIO(measured.sheet))
    assert sheet.size == (8 * 66 + 2, 8 * 66 + 2) and len(copies["samples"]) == 32  # 32 pairs, 4 a row
    first = copies["samples"][0]
    assert first["nearest_product"] in {source.product_id for source in data.sources}


def test_metrics_use_the_held_out_photos_when_enough_are_held_out(make_products, settings):
    from imagegen import services
    from imagegen.services.training import request_training

    settings.IMAGEGEN_HELD_OUT_SHARE = 0.3
    products = make_products({"dress": 12, "shoes": 12})
    job = services.execute(request_training([p.pk for p in products], steps=2, batch_size=4, device="cpu").pk)
    version = job.model_version
    held = set(version.metrics["held_out_product_ids"])
    assert len(held) == 8 and not held & set(version.product_ids)
    assert version.image_count == 16 and sorted(held | set(version.product_ids)) == sorted(p.pk for p in products)
    evaluation = version.metrics["evaluation"]
    assert evaluation["real_dir"] == "held-out photos" and evaluation["overall"]["count_real"] == 8
    assert evaluation["near_copies"]["held_out_total"] == 8
    # No separate command: the training job trained the extractor it was measured with, on training photos only.
    extractor = ModelVersion.objects.get(kind="features")
    assert extractor.pk == evaluation["feature_extractor_version"] and not held & set(extractor.product_ids)
    assert version.copy_reference and version.is_active
    # The same products are held out on every run.
    again = services.execute(request_training([p.pk for p in products], steps=2, batch_size=4, device="cpu").pk)
    assert again.model_version.metrics["held_out_product_ids"] == sorted(held)


# --- generated images -------------------------------------------------------------------------------------


def _copy_of(source) -> Image.Image:
    from mlcore.data import to_square_tensor

    with source.open("rb") as fh:
        pixels = to_square_tensor(Image.open(fh), 64)
    return Image.fromarray(pixels.permute(1, 2, 0).numpy())


@pytest.mark.parametrize("batched", [False, True])
def test_a_generated_copy_of_a_training_photo_is_attached_as_rejected(trained_version, monkeypatch, batched):
    from imagegen import services
    from imagegen.services.generation import request_generation
    from imagegen.services.model_registry import load_sampler

    trained = [p for p in trained_version.test_products if p.pk in trained_version.product_ids]
    copy = _copy_of(trained[0].image)
    sampler = load_sampler(trained_version)
    generate = sampler.generate_each

    def copying(seeds, conditions):  # the generator reproduces a training photo for seed 100
        return [copy if seed == 100 else image for seed, image in zip(seeds, generate(seeds, conditions))]

    monkeypatch.setattr(sampler, "generate_each", copying)
    jobs = [request_generation(trained[0], count=2, seed=99, send=False), request_generation(trained[1], count=1, seed=7, send=False)]
    if batched:
        finished = services.execute_many([job.pk for job in jobs])
        assert {image.parameters["batch"]["pass_jobs"] for image in GeneratedImage.objects.all()} == {2}
    else:
        finished = [services.execute(job.pk) for job in jobs]
    assert [job.state for job in finished] == ["succeeded", "succeeded"]
    images = {image.seed: image for image in GeneratedImage.objects.all()}
    assert images[100].review_state == "rejected"
    assert f"Near copy of a training photo (product #{trained[0].pk})" in images[100].review_note
    assert images[100].parameters["near_copy"]["copy"] and images[100].parameters["near_copy"]["feature_distance"] == 0
    for seed in (99, 7):  # what the generator made itself is checked too, and is no copy
        assert images[seed].review_state == "pending", images[seed].review_note
        assert images[seed].parameters["near_copy"]["copy"] is False


# --- rollback ------------------------------------------------------------------------------------------------


def _version(categories, **fields) -> ModelVersion:
    from imagegen.services import activate

    version = ModelVersion.objects.create(kind="tcgan", categories=categories, checkpoint="x.pt", **fields)
    activate(version)
    return version


def test_activating_an_older_version_serves_its_categories_again(db):
    from imagegen.services import activate
    from imagegen.services.model_registry import version_for

    old = _version(["dress", "shoes"])
    new = _version(["dress", "shoes", "hat"])
    old.refresh_from_db()
    assert not old.is_active and version_for("tcgan", "dress") == new  # the newer one covers it and retired it
    activate(old)
    assert version_for("tcgan", "dress") == old and version_for("tcgan", "shoes") == old
    assert version_for("tcgan", "hat") == new  # still active: the old one does not cover hats
    activate(new)
    assert version_for("tcgan", "dress") == new


def test_rollback_through_the_admin_action_changes_what_generation_uses(make_products, admin_client, settings):
    from django.urls import reverse

    from imagegen import services
    from imagegen.services.generation import request_generation
    from imagegen.services.training import request_training

    settings.IMAGEGEN_AUTO_ACTIVATE = "always"
    products = make_products({"dress": 5, "shoes": 5, "hat": 4})
    two = [p.pk for p in products if p.category.slug != "hat"]
    old = services.execute(request_training(two, steps=2, batch_size=4, device="cpu").pk).model_version
    new = services.execute(request_training([p.pk for p in products], steps=2, batch_size=4, device="cpu").pk).model_version
    dress, hat = products[0], products[-1]

    response = admin_client.post(
        reverse("admin:imagegen_modelversion_changelist"),
        {"action": "activate", "_selected_action": [old.pk]},
        follow=True,
    )
    assert response.status_code == 200 and "Activated 1 version" in response.content.decode()
    for product, expected in ((dress, old), (hat, new)):
        job = services.execute(request_generation(product, count=1, seed=0, send=False).pk)
        assert job.state == "succeeded", job.error
        assert product.generated_images.get().model_version == expected


def test_the_version_page_shows_the_near_copy_test(trained_version, admin_client):
    from django.urls import reverse

    page = admin_client.get(reverse("admin:imagegen_modelversion_change", args=[trained_version.pk])).content.decode()
    assert "Near copies of training photos" in page and "held-out photos are (Fisher" in page


# --- the demo's own check ------------------------------------------------------------------------------------


def test_the_demo_fails_when_the_gate_refuses_and_nothing_is_generated(make_products, settings):
    make_products({"dress": 5, "hat": 4})
    settings.IMAGEGEN_AUTO_ACTIVATE = "never"  # a gate that refuses every version
    call_command("train_imagegen", "--steps", "2", "--batch-size", "4", "--device", "cpu", stdout=StringIO())
    with pytest.raises(CommandError, match="No generate job succeeded"):
        call_command("generate_images", "--count", "1", stdout=StringIO())
    with pytest.raises(CommandError, match="no active generator .*IMAGEGEN_AUTO_ACTIVATE is 'never'"):
        call_command("demo_summary", stdout=StringIO())


def test_the_demo_summary_names_generated_files_and_quality(make_products, tmp_path):
    make_products({"dress": 5, "hat": 4})
    call_command("train_imagegen", "--steps", "2", "--batch-size", "4", "--device", "cpu", "--out", str(tmp_path), stdout=StringIO())
    with pytest.raises(CommandError, match="generated no image"):
        call_command("demo_summary", "--out", str(tmp_path), stdout=StringIO())
    call_command("generate_images", "--count", "2", stdout=StringIO())
    out = StringIO()
    call_command("demo_summary", "--out", str(tmp_path), stdout=out)
    text = out.getvalue()
    assert "generated images: 18" in text and f"sample grid: {tmp_path / 'sample_grid.png'}" in text
    assert "classifier-FID" in text and "near copies of training photos" in text
    listed = text.split("a few generated images:")[1].split("product scenes:")[0].split()
    assert "product scenes: none made" in text
    assert len(listed) == 4 and all(name.endswith(".png") for name in listed)


# --- R1 ------------------------------------------------------------------------------------------------------


def test_r1_penalty_from_settings_and_the_command(make_products, settings):
    from imagegen.services.training import training_parameters

    assert training_parameters(kind="cgan")["r1_gamma"] == 0.0
    settings.IMAGEGEN_R1_GAMMA = 2.5
    assert training_parameters(kind="cgan")["r1_gamma"] == 2.5
    assert training_parameters(kind="vae")["r1_gamma"] == 0.0  # a VAE has no discriminator to penalise
    with pytest.raises(ValidationError, match="GAN kinds"):
        training_parameters(kind="vae", r1_gamma=1.0)

    make_products({"dress": 5, "hat": 4})
    settings.IMAGEGEN_R1_EVERY = 1
    call_command("train_imagegen", "--kind", "cgan", "--steps", "2", "--batch-size", "4", "--device", "cpu",
                 "--r1-gamma", "10", stdout=StringIO())
    version = ModelVersion.objects.exclude(kind="features").get()
    from mlcore.checkpoint import load_checkpoint

    with version.checkpoint.open("rb") as fh:
        hyper = load_checkpoint(io.BytesIO(fh.read()))["hyperparameters"]
    assert hyper["r1_gamma"] == 10.0 and hyper["r1_every"] == 1
    with pytest.raises(CommandError, match="GAN kinds"):
        call_command("train_imagegen", "--kind", "vae", "--steps", "2", "--r1-gamma", "1", stdout=StringIO())
