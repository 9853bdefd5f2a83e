"""Expand (mlcore.inpainting.outpaint) and the inpainting model's per-task validation, which Repair and Expand
run by (mlcore.inpainting.validation)."""
import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import torch
from mlcore.inpainting import classical
from mlcore.inpainting.config import InpaintConfig
from mlcore.inpainting.margins import margins_for
from mlcore.inpainting.networks import InpaintNet
from mlcore.inpainting.outpaint import expand
from mlcore.inpainting.sampler import Inpainter
from mlcore.inpainting.validation import TASKS, validate
from mlcore.photos import photo_tensors

from imagegen import services
from imagegen.models import GeneratedImage, Job

from .test_enhance_tasks import catalogue_photo


def untrained():
    config = InpaintConfig(width=8)
    return Inpainter(config, InpaintNet(config), package_version="test", step=0, device=torch.device("cpu"))


def test_aspect_margins_grow_one_side_evenly():
    assert margins_for((300, 400), "1:1") == (50, 0, 50, 0)
    assert margins_for((400, 300), "4:5") == (0, 100, 0, 100)
    assert margins_for((301, 400), "1:1") == (49, 0, 50, 0)
    assert margins_for((160, 90), "16:9") == (0, 0, 0, 0)
    with pytest.raises(ValueError, match="unknown aspect"):
        margins_for((10, 10), "5:7")


@pytest.mark.parametrize("choice", [None, {"method": "tool", "tool": "OpenCV Telea"}, {"method": "model"}])
def test_the_photo_stays_bit_for_bit_where_it_was_and_only_the_margins_are_new(choice):
    photo = catalogue_photo(2)
    margins = (13, 7, 21, 0)
    out = expand(photo, margins, choice, untrained())
    assert out.size == (photo.width + 34, photo.height + 7)
    assert np.array_equal(np.asarray(out)[7:, 13 : 13 + photo.width], np.asarray(photo))
    assert np.asarray(out)[:7].std() > 0 or choice is None, "the margins are filled, not left black"


def test_transparency_is_kept_and_the_margins_continue_the_edges_alpha():
    photo = catalogue_photo(2).convert("RGBA")
    photo.putalpha(Image.linear_gradient("L").resize(photo.size))
    out = expand(photo, (10, 6, 10, 0))
    alpha, own = np.asarray(out.getchannel("A")), np.asarray(photo.getchannel("A"))
    assert out.mode == "RGBA" and np.array_equal(alpha[6:, 10:-10], own)
    # A transparent top edge gives a transparent top margin, not the colours that were hidden under it.
    assert np.array_equal(alpha[:6, 10:-10], np.repeat(own[:1], 6, axis=0)) and (alpha[:6] == 0).all()


def test_bad_margins_are_refused():
    photo = catalogue_photo(2)
    with pytest.raises(ValueError, match="at most"):
        expand(photo, (photo.width * 3, 0, 0, 0))
    with pytest.raises(ValueError, match="at least one"):
        expand(photo, (0, 0, 0, 0))
    with pytest.raises(ValueError, match="inpainter"):
        expand(photo, (4, 0, 4, 0), {"method": "model"})


def test_validation_scores_every_fill_per_task_and_the_model_only_wins_by_beating_them():
    photos = photo_tensors([catalogue_photo(i) for i in (0, 9, 18)], max_side=None)
    report = validate(untrained(), photos, crop=96)
    assert report["photos"] == 3 and report["crop"] == 96 and set(report["tasks"]) == set(TASKS)
    for task, choice in report["tasks"].items():
        assert set(choice["psnr"]) == {"model", *(f.name for f in TASKS[task])}
        assert classical.REFLECT.name not in choice["psnr"], "a mirrored product is never a choice"
        winner = "model" if choice["method"] == "model" else choice["tool"]
        assert choice["psnr"][winner] == max(choice["psnr"].values())
    assert validate(untrained(), photos, crop=96) == report, "seeded holes: the same numbers again"


def test_expand_and_repair_run_the_validated_choice_and_say_which(make_products, editor_api):
    from imagegen.models import ModelVersion

    products = make_products({"hat": 4, "dress": 4})
    product = products[0]
    reply = editor_api.post(f"/api/products/{product.pk}/expand/", {"aspect": "1:1"}, format="json")
    assert reply.status_code == 202, reply.json()
    done = services.execute(Job.objects.get().pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    result = GeneratedImage.objects.get(job=done)
    assert result.width == result.height and result.kind == "expanded" and result.model_version is None
    assert result.parameters["expand"] | {"margins": None} == {
        "task": "expand", "method": "tool", "tool": "Edge colour", "measured": False, "margins": None,
        "choices_from": None}
    with Image.open(product.image.path) as photo, Image.open(result.image.path) as stored:
        left = result.parameters["expand"]["margins"][0]
        assert np.array_equal(np.asarray(stored.convert("RGB"))[:, left : left + photo.width], np.asarray(photo.convert("RGB")))

    # A version validated so that the model won small holes and Telea large ones.
    job = services.request_photo_model_training([p.pk for p in products], kind="inpaint", steps=1, batch_size=2, send=False)
    assert services.execute(job.pk).state == Job.State.SUCCEEDED
    version = ModelVersion.objects.get(kind="inpaint")
    version.is_active = True
    version.metrics = {**version.metrics, "validation": {"photos": 2, "tasks": {
        "repair_small": {"method": "model", "model_margin_db": 0.4},
        "repair_large": {"method": "tool", "tool": "OpenCV Telea", "model_margin_db": -0.2},
        "expand": {"method": "model", "model_margin_db": 0.1}}}}
    version.save()
    for regions, expected in (([[0.4, 0.4, 0.5, 0.5]], ("repair_small", "model")), ([[0.1, 0.1, 0.7, 0.7]], ("repair_large", "tool"))):
        done = services.execute(services.request_edit(product, "repair", options={"regions": regions}, send=False).pk)
        assert done.state == Job.State.SUCCEEDED, done.error
        result = GeneratedImage.objects.get(job=done)
        step = result.parameters["repair"]
        assert (step["task"], step["method"], step["choices_from"]) == (*expected, version.pk)
        # The row names the model only where it made pixels (the XMP says the same).
        assert result.model_version == (version if step["method"] == "model" else None)
    done = services.execute(services.request_edit(product, "expand", options={"margins": [0, 10, 0, 10]}, send=False).pk)
    assert GeneratedImage.objects.get(job=done).parameters["expand"]["method"] == "model"


@pytest.mark.parametrize("body, message", [
    ({"aspect": "1:1", "margins": [1, 0, 0, 0]}, "not both"), ({}, "aspect ratio or margins"),
    ({"margins": [0, 0, 0, 0]}, "above 0"), ({"aspect": "5:7"}, "valid choice"),
])
def test_bad_expand_options_are_a_400(make_products, editor_api, body, message):
    (product,) = make_products({"hat": 1})
    reply = editor_api.post(f"/api/products/{product.pk}/expand/", body, format="json")
    assert reply.status_code == 400 and message in str(reply.json()), reply.json()
    assert not Job.objects.exists()


def test_a_photo_already_at_the_aspect_fails_the_job_with_the_reason(make_products):
    (product,) = make_products({"hat": 1})
    product.image.save("square.png", ContentFile(_png(Image.new("RGB", (64, 64), (200, 200, 200)))), save=True)
    done = services.execute(services.request_edit(product, "expand", options={"aspect": "1:1"}, send=False).pk)
    assert done.state == Job.State.FAILED and "is 1:1 already" in done.error
    assert not GeneratedImage.objects.exists()


def _png(image):
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
