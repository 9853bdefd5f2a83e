"""train_feature_extractor, evaluate_imagegen and generate_samples, run as an operator would."""
import json
import shutil
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from imagegen.models import ModelVersion

from .conftest import DEMO_CATALOGUE

pytestmark = pytest.mark.slow


@pytest.fixture
def held_out(tmp_path):
    """Demo photos the fixtures never train on (they use each category's first photos)."""
    root = tmp_path / "real"
    for category in ("dress", "shoes"):
        (root / category).mkdir(parents=True)
        for photo in sorted((DEMO_CATALOGUE / category).glob("*.jpg"))[20:32]:
            shutil.copy(photo, root / category / photo.name)
    return root


def test_evaluate_needs_a_feature_extractor(trained_version, held_out):
    # Training trained one for its categories; without it there is nothing to measure with.
    ModelVersion.objects.filter(kind="features").update(is_active=False)
    with pytest.raises(CommandError, match="No feature extractor covers dress, shoes"):
        call_command("evaluate_imagegen", "--model-version", str(trained_version.pk), "--real", str(held_out))


def test_feature_extractor_then_evaluation_report(trained_version, held_out):
    out = StringIO()
    call_command("train_feature_extractor", "--epochs", "2", "--device", "cpu", stdout=out)
    features = ModelVersion.objects.filter(kind="features").latest("created_at")
    assert features.is_active and features.categories == ["dress", "shoes"] and features.image_count == 12
    # It retired the one the training job trained for itself on its 10 training photos (2 products held out).
    automatic = ModelVersion.objects.filter(kind="features").earliest("created_at")
    assert automatic.image_count == 10 and not automatic.is_active
    assert 0.0 <= features.metrics["train_accuracy"] <= 1.0
    assert trained_version.is_active  # a feature extractor does not retire generators

    out = StringIO()
    call_command(
        "evaluate_imagegen", "--model-version", str(trained_version.pk), "--real", str(held_out), "--per-class", "8",
        stdout=out,
    )
    report = json.loads(out.getvalue())
    assert report["feature_extractor_version"] == features.pk
    assert report["overall"]["fid"] >= 0 and set(report["per_category"]) == {"dress", "shoes"}
    assert report["near_copies"]["flagged"] >= 0 and report["near_copies"]["threshold"] > 0
    trained_version.refresh_from_db()
    assert trained_version.metrics["evaluation"]["overall"] == report["overall"]


def test_evaluate_rejects_unknown_version_and_missing_folder(db, tmp_path):
    with pytest.raises(CommandError, match="no generator model version 999"):
        call_command("evaluate_imagegen", "--model-version", "999", "--real", str(tmp_path))


def test_generate_samples_writes_named_pngs(trained_version, tmp_path):
    call_command("generate_samples", "--model-version", str(trained_version.pk), "--count", "3", "--out", str(tmp_path / "s"), stdout=StringIO())
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert names == ["dress_0.png", "dress_1.png", "dress_2.png", "shoes_0.png", "shoes_1.png", "shoes_2.png"]
    assert Image.open(tmp_path / "s" / "dress_0.png").size == (64, 64)

    call_command("generate_samples", "--model-version", str(trained_version.pk), "--count", "2", "--category", "shoes",
                 "--seed", "1", "--out", str(tmp_path / "one"), stdout=StringIO())
    # Seeds continue per index: shoes_0 with seed 1 is shoes_1 with seed 0.
    a = Image.open(tmp_path / "one" / "shoes_0.png").tobytes()
    b = Image.open(tmp_path / "s" / "shoes_1.png").tobytes()
    assert max(abs(x - y) for x, y in zip(a, b)) <= 1

    with pytest.raises(CommandError, match="not trained on hat"):
        call_command("generate_samples", "--model-version", str(trained_version.pk), "--count", "1", "--category", "hat",
                     "--out", str(tmp_path / "x"))


def _train(products, **options):
    from imagegen import services
    from imagegen.services.training import request_training

    job = services.execute(request_training([p.pk for p in products], steps=2, batch_size=4, device="cpu", **options).pk)
    assert job.state == "succeeded", job.error
    return job.model_version


def test_new_version_is_measured_and_not_activated_when_worse(trained_version, held_out):
    call_command("train_feature_extractor", "--epochs", "1", "--device", "cpu", stdout=StringIO())
    products = trained_version.test_products
    first = _train(products, seed=1)
    assert first.is_active and first.metrics["evaluation"]["real_dir"] == "training photos"
    assert "fid" in first.metrics["evaluation"]["overall"] and "FID" in first.metrics["activation"]
    # Make the active version look perfect: the next one, whatever it scores, is worse.
    first.metrics["evaluation"]["overall"]["fid"] = 0.0
    first.save()

    second = _train(products, seed=2)

    second.refresh_from_db()
    first.refresh_from_db()
    assert not second.is_active and first.is_active
    assert "worse than the active" in second.metrics["activation"]


def test_auto_activation_can_be_switched_off(make_products, settings):
    settings.IMAGEGEN_AUTO_ACTIVATE = "never"
    version = _train(make_products({"dress": 5, "hat": 4}))
    assert not version.is_active and "never" in version.metrics["activation"]


def test_quality_gate_attaches_low_scores_as_rejected_with_the_reason(trained_version, settings):
    from imagegen import services
    from imagegen.services.generation import request_generation

    product = trained_version.test_products[0]
    settings.IMAGEGEN_MIN_QUALITY_SCORE = 1.01  # above any possible score
    services.execute(request_generation(product, count=2, seed=0).pk)
    rows = list(product.generated_images.all())
    assert [r.review_state for r in rows] == ["rejected", "rejected"]
    assert all("below IMAGEGEN_MIN_QUALITY_SCORE 1.01" in r.review_note for r in rows)
    settings.IMAGEGEN_MIN_QUALITY_SCORE = 0.0
    services.execute(request_generation(product, count=1, seed=5).pk)
    assert product.generated_images.filter(review_state="pending", review_note="").count() == 1


def test_a_deliberately_broken_generator_is_measured_worse_and_not_activated(make_products):
    """The gate on real measurements: the same trained weights, once intact and once with the output layer
    zeroed (every image the same flat grey), evaluated on the training photos with the catalogue extractor."""
    import torch

    from imagegen.services.products import product_photos
    from imagegen.services.training import register_version, train, training_parameters

    products = make_products({"dress": 8, "shoes": 8})
    call_command("train_feature_extractor", "--epochs", "3", "--device", "cpu", stdout=StringIO())
    params = training_parameters(steps=40, batch_size=8, seed=3, device="cpu") | {"product_ids": [p.pk for p in products]}
    trainer, summary, data = train(params, list(product_photos(params["product_ids"])))
    intact = register_version(trainer, summary, data, params)
    assert intact.is_active, intact.metrics["activation"]

    with torch.no_grad():
        trainer.generator_ema.to_rgb.weight.zero_()
        trainer.generator_ema.to_rgb.bias.zero_()
    broken = register_version(trainer, summary, data, params)

    intact.refresh_from_db()
    fid = {v: v.metrics["evaluation"]["overall"]["fid"] for v in (intact, broken)}
    assert fid[broken] > fid[intact]
    assert not broken.is_active and intact.is_active
    assert "worse than the active" in broken.metrics["activation"]
