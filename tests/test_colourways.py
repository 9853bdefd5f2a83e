"""Colourways: the product recoloured inside its matte (mlcore.colourways), through the services and the API."""
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import torch
from mlcore.cielab import srgb_to_lab
from mlcore.colourways import hue_shift, product_colour, recolour, target_rgb

from imagegen import services
from imagegen.models import GeneratedImage, Job


def shirt(size=(160, 200)):
    """A shaded, textured blue garment on a light grey backdrop, and its matte (soft edge)."""
    width, height = size
    rng = np.random.default_rng(3)
    backdrop = np.full((height, width, 3), 225, np.float64) + rng.normal(0, 2, (height, width, 3))
    matte = Image.new("L", size, 0)
    ImageDraw.Draw(matte).rounded_rectangle([30, 30, width - 30, height - 25], radius=20, fill=255)
    matte = matte.filter(ImageFilter.GaussianBlur(1.5))
    shade = np.linspace(0.7, 1.1, width)[None, :, None] * (1 + 0.08 * np.sin(np.arange(height) / 3.0))[:, None, None]
    garment = np.array([40, 70, 150], np.float64) * shade + rng.normal(0, 3, (height, width, 3))
    alpha = np.asarray(matte, np.float64)[..., None] / 255
    photo = (alpha * garment + (1 - alpha) * backdrop).clip(0, 255).astype(np.uint8)
    return Image.fromarray(photo), matte


def lab(image):
    return srgb_to_lab(torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 255)


@pytest.mark.parametrize("colour", ["red", "white", "black", "#2e8b57"])
def test_the_product_takes_the_colour_keeps_its_shading_and_the_backdrop_keeps_its_bytes(colour):
    photo, matte = shirt()
    out = recolour(photo, matte, colour)
    alpha = torch.from_numpy(np.array(matte)).float() / 255
    target = srgb_to_lab(torch.tensor(target_rgb(colour)).float().view(3, 1, 1) / 255).view(3)
    assert float((product_colour(lab(out), alpha) - target).norm()) < 10
    outside = np.asarray(matte) == 0
    assert np.array_equal(np.asarray(out)[outside], np.asarray(photo)[outside])
    # The shading: lightness inside the product still follows the original's (correlation of L*).
    inside = np.asarray(matte) == 255
    before, after = lab(photo)[0].numpy()[inside], lab(out)[0].numpy()[inside]
    assert np.corrcoef(before, after)[0, 1] > 0.95


def test_the_classical_hue_shift_misses_a_dark_or_light_target():
    photo, matte = shirt()
    alpha = torch.from_numpy(np.array(matte)).float() / 255
    target = srgb_to_lab(torch.tensor(target_rgb("white")).float().view(3, 1, 1) / 255).view(3)
    assert float((product_colour(lab(hue_shift(photo, matte, "white")), alpha) - target).norm()) > 30


def test_colours_are_names_or_hex_codes():
    assert target_rgb("Navy") == target_rgb("navy") and target_rgb("#C81E28") == (200, 30, 40)
    with pytest.raises(ValueError, match="unknown colour"):
        target_rgb("sunset")
    photo, matte = shirt()
    with pytest.raises(ValueError, match="no product"):
        recolour(photo, Image.new("L", photo.size, 0), "red")


def test_colourways_make_one_image_per_colour_through_the_api(make_products, editor_api):
    (product,) = make_products({"hat": 1})
    original = product.image.read()
    reply = editor_api.post(f"/api/products/{product.pk}/colourways/", {"colours": ["Red", "#1e3a8a"]},
                            format="json")
    assert reply.status_code == 202, reply.json()
    job = Job.objects.get()
    assert job.parameters["options"] == {"colours": ["red", "#1e3a8a"]}
    done = services.execute(job.pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    results = list(GeneratedImage.objects.filter(job=done).order_by("seed"))
    assert [r.parameters["colour"] for r in results] == ["red", "#1e3a8a"] and [r.seed for r in results] == [0, 1]
    assert all(r.kind == "colourway" and r.review_state == "pending" for r in results)
    # The demo hats are small and soft-edged: the measured distance is loose here (the benchmark measures it).
    assert all(r.parameters["colourway"]["delta_e"] < 25 for r in results), [r.parameters["colourway"] for r in results]
    product.image.seek(0)
    assert product.image.read() == original


@pytest.mark.parametrize("colours, message", [
    (["sunset"], "Unknown colour"), (["red", "RED"], "twice"), ([], "at least 1"), (["red"] * 9, "no more than 8"),
])
def test_bad_colours_are_a_400_and_queue_nothing(make_products, editor_api, colours, message):
    (product,) = make_products({"hat": 1})
    reply = editor_api.post(f"/api/products/{product.pk}/colourways/", {"colours": colours}, format="json")
    assert reply.status_code == 400 and message in str(reply.json()), reply.json()
    assert not Job.objects.exists()


@pytest.mark.parametrize("operation, options, per_product", [
    ("colourways", {"colours": ["navy", "olive"]}, 2), ("expand", {"aspect": "4:5"}, 1),
    ("enhance", {"tasks": ["exposure"], "upscale": 2}, 1),
])
def test_the_new_operations_run_in_bulk_through_the_api(make_products, editor_api, operation, options, per_product):
    from imagegen.models import BulkOperation
    from imagegen.services import bulk

    products = make_products({"hat": 3})
    reply = editor_api.post("/api/bulk/edit/", {"product_ids": [p.pk for p in products], "operation": operation,
                                                "options": options}, format="json")
    assert reply.status_code == 202, reply.json()
    batch = BulkOperation.objects.get()
    assert batch.total == 3
    # Expand in this process (the test's transaction never commits, so no expansion task was sent).
    BulkOperation.objects.filter(pk=batch.pk).update(state=BulkOperation.State.EXPANDING)
    job_ids, _more = bulk._expand_chunk(batch.pk)
    services.execute_many(job_ids)
    jobs = list(Job.objects.filter(bulk=batch))
    done = [job for job in jobs if job.state == Job.State.SUCCEEDED]
    # A photo the classical cut-out cannot judge is refused with the reason (colourways needs the product's matte).
    refused = [job for job in jobs if job not in done]
    assert all(operation == "colourways" and "train the cut-out model" in job.error for job in refused), \
        [job.error for job in refused]
    assert done and len(done) + len(refused) == 3
    images = GeneratedImage.objects.filter(job__bulk=batch)
    assert images.count() == len(done) * per_product
    assert {i.product_id for i in images} == {job.product_id for job in done}
