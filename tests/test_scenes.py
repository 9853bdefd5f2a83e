"""Product scenes through the services, the API, the admin and a real worker: scene sets (uploaded, the shop's
own backdrops, studio), training a set's scene generator (refused with the number needed when too few
photos), putting products in a scene (variants, the product's identity, provenance), bulk. The composition
maths is in test_scene_composition.py, the models in test_harmonise.py and test_scenegen.py."""
import io
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from PIL import Image
from rest_framework.test import APIClient

from imagegen import services
from imagegen.models import BulkOperation, GeneratedImage, Job, ModelVersion, ScenePhoto, SceneSet
from imagegen.services import bulk, scene_sets
from imagegen.services.provenance import COMPOSITE, EDITED, PNG_XMP_KEY

from .conftest import wait_for_job

pytestmark = pytest.mark.slow

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "clothing-dataset-small"
DEMO = Path(__file__).resolve().parent.parent / "shop" / "demo_catalogue"


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def scene_photo(seed: int, size=(176, 132), oak: bool = False) -> bytes:
    """An empty "table against a wall": two tones split at a random height, with grain; any colours, or a
    cream wall over an oak table (``oak``: one look, as a real scene set has)."""
    rng = np.random.default_rng(seed)
    if oak:
        wall, table = rng.integers(0, 12, 3) + (205, 190, 165), rng.integers(0, 12, 3) + (120, 80, 45)
    else:
        wall, table = rng.integers(120, 240, 3), rng.integers(60, 180, 3)
    split = int(size[1] * rng.uniform(0.45, 0.7))
    pixels = np.empty((size[1], size[0], 3), np.float64)
    pixels[:split], pixels[split:] = wall, table
    pixels += rng.normal(0, 6, pixels.shape)
    return png_bytes(Image.fromarray(pixels.clip(0, 255).astype(np.uint8)))


_READY: list[Path] = []


def cutout_ready_photos(count: int) -> list[Path]:
    """Demo catalogue photos on a plain backdrop, the ones the classical cut-out takes (no model is trained)."""
    from mlcore.background.classical import border_matte

    if len(_READY) < count:
        for path in sorted(DEMO.glob("*/*.jpg")):
            if path not in _READY and border_matte(Image.open(path).convert("RGB")).confident:
                _READY.append(path)
            if len(_READY) >= count:
                break
    return _READY[:count]


@pytest.fixture
def ready_products(db):
    """``ready_products(n)``: products whose photos the classical cut-out takes."""
    from django.core.files import File

    from shop.models import Category, Product

    def make(count: int) -> list:
        products = []
        for i, path in enumerate(cutout_ready_photos(count)):
            category, _ = Category.objects.get_or_create(slug=path.parent.name, defaults={"name": path.parent.name})
            product = Product(name=f"Ready {i}", slug=f"ready-{i}-{path.stem[:8]}", category=category)
            with path.open("rb") as fh:
                product.image.save(path.name, File(fh), save=False)
            product.save()
            products.append(product)
        return products

    return make


@pytest.fixture
def scene_admin(django_user_model):
    """Staff who may manage scene sets, train and edit photos."""
    user = django_user_model.objects.create_user("scenes", password="pw-scenes-123", is_staff=True)
    codenames = ["edit_photos", "train_generator", "add_sceneset", "view_sceneset", "change_sceneset",
                 "add_scenephoto", "view_scenephoto", "view_product", "change_product"]
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def api(scene_admin):
    client = APIClient()
    client.force_authenticate(scene_admin)
    return client


@pytest.fixture
def small_scenes(settings):
    """Scene generators at their smallest (32 px) and a low photo minimum, so they train in seconds."""
    settings.IMAGEGEN_SCENE_IMAGE_SIZE = 32
    settings.IMAGEGEN_SCENE_MIN_PHOTOS = 12
    settings.IMAGEGEN_MIN_TRAINING_IMAGES = 8


def studio_set(colour="#d8d0c4") -> SceneSet:
    return scene_sets.create_scene_set(name=f"Studio {colour}", source=SceneSet.Source.STUDIO, colour=colour)


# -- scene sets --------------------------------------------------------------------------------------------

def test_a_scene_set_is_made_and_takes_uploads_under_the_upload_rules(api, db):
    reply = api.post("/api/scene-sets/", {"name": "Oak table", "source": "uploaded"}, format="json")
    assert reply.status_code == 201, reply.json()
    set_id = reply.json()["id"]
    ok = api.post(f"/api/scene-sets/{set_id}/photos/", {"image": io.BytesIO(scene_photo(0))}, format="multipart")
    assert ok.status_code == 201 and ok.json()["origin"] == "uploaded"
    refused = api.post(f"/api/scene-sets/{set_id}/photos/", {"image": io.BytesIO(b"not an image")}, format="multipart")
    assert refused.status_code == 400 and "image" in refused.json()
    assert ScenePhoto.objects.filter(scene_set_id=set_id).count() == 1
    again = api.post("/api/scene-sets/", {"name": "Oak table", "source": "uploaded"}, format="json")
    assert again.status_code == 400 and "name" in again.json()
    bad = api.post("/api/scene-sets/", {"name": "Wall", "source": "studio", "colour": "red"}, format="json")
    assert bad.status_code == 400 and "colour" in bad.json()


def test_a_set_with_too_few_photos_is_refused_with_the_number_needed(api, settings, db):
    settings.IMAGEGEN_SCENE_MIN_PHOTOS = 12
    scene_set = scene_sets.create_scene_set(name="Marble")
    for seed in range(5):
        scene_sets.add_scene_photo(scene_set, scene_photo(seed))
    reply = api.post(f"/api/scene-sets/{scene_set.pk}/train/", {"steps": 3}, format="json")
    assert reply.status_code == 400
    message = reply.json()["scene_set"][0]
    assert "5 usable backdrop photos" in message and "at least 12" in message and "Add 7 more" in message
    assert not Job.objects.exists()
    studio = studio_set()
    reply = api.post(f"/api/scene-sets/{studio.pk}/train/", {}, format="json")
    assert reply.status_code == 400 and "needs no training" in reply.json()["scene_set"][0]


def test_uploads_go_only_to_a_set_of_uploaded_photos(db):
    with pytest.raises(ValidationError) as refused:
        scene_sets.add_scene_photo(studio_set(), scene_photo(0))
    assert "image" in refused.value.message_dict
    assert not ScenePhoto.objects.exists()


# -- putting products in a scene ---------------------------------------------------------------------------

def test_bad_scene_options_are_a_400_naming_the_field(editor_api, make_products):
    (product,) = make_products({"hat": 1})
    studio = studio_set()
    for body, field in [
        ({"scene_set": 999999}, "scene_set"),
        ({"scene_set": studio.pk, "aspect": "2:1"}, "aspect"),
        ({"scene_set": studio.pk, "variants": 99}, "variants"),
        ({"scene_set": studio.pk, "preset": "no-such-preset"}, "preset"),
        ({"scene_set": studio.pk, "fill": 1.5}, "fill"),
        ({"scene_set": studio.pk, "pose": "sitting"}, "pose"),
        ({"scene_set": studio.pk, "pose": "flat", "reflection": 0.2}, "reflection"),
        ({}, "scene_set"),
    ]:
        reply = editor_api.post(f"/api/products/{product.pk}/scene/", body, format="json")
        assert reply.status_code == 400 and field in reply.json(), (body, reply.json())
    assert not Job.objects.exists()


def test_a_product_goes_into_studio_scenes_keeping_its_pixels(editor_api, ready_products):
    (product,) = ready_products(1)
    studio = studio_set()
    reply = editor_api.post(f"/api/products/{product.pk}/scene/",
                            {"scene_set": studio.pk, "variants": 2, "seed": 5, "aspect": "4:5", "long_side": 640},
                            format="json")
    assert reply.status_code == 202
    done = services.execute(reply.json()["id"])
    assert done.state == Job.State.SUCCEEDED, done.error
    images = list(GeneratedImage.objects.filter(job=done).order_by("seed"))
    assert [i.seed for i in images] == [5, 6] and all(i.kind == "scene" for i in images)
    first = images[0]
    assert (first.width, first.height) == (512, 640), "4:5 at the long side asked for"
    assert first.parameters["scene_set"] == studio.pk and first.parameters["seed"] == 5
    assert first.parameters["options"]["aspect"] == "4:5" and "composite" in first.parameters
    assert first.source_image == product.image.name and first.review_state == "pending"
    with Image.open(first.image.path) as stored:
        assert COMPOSITE in stored.info[PNG_XMP_KEY], "no trained model took part: a plain composite"
        a, b = np.asarray(stored.convert("RGB")), np.asarray(Image.open(images[1].image.path).convert("RGB"))
    assert not np.array_equal(a, b), "two seeds, two backdrops"


def test_a_white_preset_puts_the_product_on_pure_white_at_its_size(editor_api, ready_products):
    (product,) = ready_products(1)
    reply = editor_api.post(f"/api/products/{product.pk}/scene/",
                            {"scene_set": studio_set().pk, "preset": "taobao-white-800", "variants": 1, "shadow": False},
                            format="json")
    done = services.execute(reply.json()["id"])
    assert done.state == Job.State.SUCCEEDED, done.error
    image = GeneratedImage.objects.get(job=done)
    with Image.open(image.image.path) as stored:
        pixels = np.asarray(stored.convert("RGB"))
    assert pixels.shape == (800, 800, 3)
    corners = np.concatenate([pixels[:20, :20].reshape(-1, 3), pixels[-20:, -20:].reshape(-1, 3)])
    assert (corners == 255).all(), "the marketplace's pure white"


def test_a_photo_the_classical_cut_out_cannot_judge_fails_saying_to_train_the_cut_out_model(make_products):
    from mlcore.background.classical import border_matte

    products = make_products({"shoes": 6})
    (product,) = [p for p in products if not border_matte(Image.open(p.image.path).convert("RGB")).confident][:1]
    done = services.execute(services.request_edit(product, "scene", options={"scene_set": studio_set().pk}, send=False).pk)
    assert done.state == Job.State.FAILED and "train the cut-out model" in done.error
    assert not GeneratedImage.objects.exists()


def test_a_set_without_a_generator_uses_its_own_photos_and_without_photos_fails_saying_what_to_do(ready_products):
    (product,) = ready_products(1)
    empty = scene_sets.create_scene_set(name="Showroom")
    done = services.execute(services.request_edit(product, "scene", options={"scene_set": empty.pk}, send=False).pk)
    assert done.state == Job.State.FAILED and "no photos and no trained scene generator" in done.error
    assert not GeneratedImage.objects.exists()
    photos = [scene_sets.add_scene_photo(empty, scene_photo(seed)) for seed in range(2)]
    done = services.execute(services.request_edit(product, "scene", options={"scene_set": empty.pk, "variants": 3},
                                                  send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    used = [image.parameters["backdrop"] for image in GeneratedImage.objects.filter(job=done).order_by("seed")]
    assert used == [f"photo {photos[0].pk}", f"photo {photos[1].pk}", f"photo {photos[0].pk}"]


def test_a_barely_trained_generator_is_not_activated_and_the_set_keeps_its_photos(small_scenes, ready_products):
    scene_set = scene_sets.create_scene_set(name="Oak")
    for seed in range(12):
        scene_sets.add_scene_photo(scene_set, scene_photo(seed, oak=True))
    done = services.execute(scene_sets.request_scene_training(scene_set, steps=2, batch_size=4, send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    version = done.model_version
    quality = version.metrics["quality"]
    assert not version.is_active and not quality["passes"] and quality["plausible"] < quality["needed"] == 0.8
    assert "look like the scene set's photos" in version.metrics["activation"]
    (product,) = ready_products(1)
    done = services.execute(services.request_edit(product, "scene", options={"scene_set": scene_set.pk, "variants": 1},
                                                  send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    assert GeneratedImage.objects.get(job=done).parameters["backdrop"].startswith("photo ")


def test_an_uploaded_set_trains_its_generator_and_products_go_into_its_new_scenes(small_scenes, ready_products, settings):
    # Activation by policy here: the quality gate itself is the test above.
    settings.IMAGEGEN_AUTO_ACTIVATE = "always"
    scene_set = scene_sets.create_scene_set(name="Linen")
    for seed in range(12):
        scene_sets.add_scene_photo(scene_set, scene_photo(seed))
    other = scene_sets.create_scene_set(name="Concrete")
    for seed in range(12):
        scene_sets.add_scene_photo(other, scene_photo(100 + seed))
    versions = []
    for each in (scene_set, other, scene_set):
        job = scene_sets.request_scene_training(each, steps=3, batch_size=4, send=False)
        done = services.execute(job.pk)
        assert done.state == Job.State.SUCCEEDED, done.error
        versions.append(ModelVersion.objects.get(jobs=done))
    first, concrete, second = (ModelVersion.objects.get(pk=v.pk) for v in versions)
    assert second.is_active and not first.is_active, "a set's new version retires its old one"
    assert concrete.is_active, "and not another set's"
    assert second.kind == "scenes" and second.scene_set == scene_set and second.image_count == 12
    copies = second.metrics["near_copies"]
    assert copies["generated_total"] == 64 and copies["held_out_total"] == 0 and "p_value" in copies
    quality = second.metrics["quality"]
    assert 0 <= quality["plausible"] <= 1 and quality["radius"] > 0
    assert second.sample_grid and second.sample_grid.size > 0
    assert scene_sets.active_generator(scene_set) == second

    (product,) = ready_products(1)
    done = services.execute(services.request_edit(product, "scene", options={"scene_set": scene_set.pk, "variants": 1,
                                                                              "long_side": 512}, send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    image = GeneratedImage.objects.get(job=done)
    assert image.parameters["models"]["scenes"] == second.pk
    with Image.open(image.image.path) as stored:
        xmp = stored.info[PNG_XMP_KEY]
    assert EDITED in xmp and str(second.pk) in xmp, "compositeWithTrainedAlgorithmicMedia, naming the generator"


def test_the_shop_s_own_backdrops_are_made_from_its_product_photos(small_scenes, ready_products, make_products):
    products = ready_products(14) + make_products({"shoes": 2})
    scene_set = scene_sets.create_scene_set(name="Our floor", source=SceneSet.Source.BACKDROPS,
                                            product_ids=[p.pk for p in products])
    assert scene_sets.available_backdrops(scene_set) == 16
    done = services.execute(scene_sets.request_scene_training(scene_set, steps=2, batch_size=4, send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    backdrops = list(scene_set.photos.all())
    # A photo the cut-out cannot judge gives no backdrop (it would still show pieces of the product).
    assert 12 <= len(backdrops) <= 15 and all(b.origin == ScenePhoto.Origin.BACKDROP for b in backdrops)
    assert {b.product_id for b in backdrops} <= {p.pk for p in products}
    version = done.model_version
    # Some backdrops are held out: the near-copy test's reference rate.
    assert version.image_count + version.metrics["held_out_backdrops"] == len(backdrops)
    assert version.metrics["near_copies"]["held_out_total"] == version.metrics["held_out_backdrops"] > 0
    # Training again reuses the backdrops made (one per product).
    done = services.execute(scene_sets.request_scene_training(scene_set, steps=2, batch_size=4, send=False).pk)
    assert done.state == Job.State.SUCCEEDED and scene_set.photos.count() == len(backdrops)


def test_a_bulk_scene_operation_gives_each_product_its_own_seeds(ready_products):
    products = ready_products(3)
    studio = studio_set()
    operation = bulk.request_bulk_edit(
        type(products[0]).objects.filter(pk__in=[p.pk for p in products]), "scene",
        options={"scene_set": studio.pk, "variants": 2, "seed": 10, "long_side": 256},
    )
    assert operation.operation == BulkOperation.Operation.EDIT and operation.total == 3
    # Expand one chunk in this process (the test's transaction never commits, so no expansion task was sent).
    BulkOperation.objects.filter(pk=operation.pk).update(state=BulkOperation.State.EXPANDING)
    job_ids, _more = bulk._expand_chunk(operation.pk)
    assert len(job_ids) == 3
    services.execute_many(job_ids)
    seeds = sorted(GeneratedImage.objects.filter(job__bulk=operation).values_list("seed", flat=True))
    assert seeds == [10, 11, 12, 13, 14, 15]
    with pytest.raises(ValidationError) as refused:
        bulk.request_bulk_edit(type(products[0]).objects.all(), "scene", options={"scene_set": 999999})
    assert "scene_set" in refused.value.message_dict


# -- the admin and the worker ------------------------------------------------------------------------------

def test_the_admin_makes_a_backdrop_set_from_products_and_puts_them_in_a_scene(client, scene_admin, make_products):
    products = make_products({"hat": 2})
    client.force_login(scene_admin)
    ids = [p.pk for p in products]
    done = client.post("/admin/shop/product/", {"action": "make_scene_set", "_selected_action": ids, "apply": "1",
                                                "name": "Hat backdrops"}, follow=True)
    assert "Made the scene set" in done.content.decode()
    made = SceneSet.objects.get(name="Hat backdrops")
    assert made.source == SceneSet.Source.BACKDROPS and sorted(made.product_ids) == sorted(ids)
    page = client.get(f"/admin/imagegen/sceneset/{made.pk}/change/")
    assert page.status_code == 200
    studio = studio_set()
    confirm = client.post("/admin/shop/product/", {"action": "put_in_scene", "_selected_action": ids})
    assert confirm.status_code == 200 and "Scene set" in confirm.content.decode()
    queued = client.post("/admin/shop/product/", {
        "action": "put_in_scene", "_selected_action": ids, "apply": "1", "scene_set": studio.pk, "aspect": "1:1",
        "variants": 1, "seed": 0, "fill": 0.7, "floor": 0.88, "position": 0.5, "light": 135, "reflection": 0,
        "depth_of_field": 1, "shadow": "on", "harmonise": "on",
    }, follow=True)
    assert "Queued 2" in queued.content.decode(), queued.content.decode()[:2000]
    assert Job.objects.filter(kind=Job.Kind.EDIT, parameters__operation="scene").count() == 2


def test_a_scene_job_runs_on_the_real_worker(worker, live_server, ready_products, editor):
    (product,) = ready_products(1)
    studio = studio_set("#e6e1da")
    client = APIClient()
    client.force_authenticate(editor)
    reply = client.post(f"/api/products/{product.pk}/scene/", {"scene_set": studio.pk, "variants": 2, "long_side": 512},
                        format="json")
    assert reply.status_code == 202
    job = wait_for_job(reply.json()["id"])
    assert job.state == Job.State.SUCCEEDED, job.error
    assert GeneratedImage.objects.filter(job=job, kind="scene").count() == 2


@pytest.mark.browser
def test_a_shop_uploads_a_scene_set_trains_it_and_puts_a_product_in_it_in_the_browser(
    worker, live_server, ready_products, staff_user, browser_page, output_dir, tmp_path
):
    from .test_browser import log_in, run_action

    page = browser_page
    (product,) = ready_products(1)
    files = []
    for seed in range(12):
        path = tmp_path / f"table-{seed}.png"
        path.write_bytes(scene_photo(seed, size=(192, 144)))
        files.append(str(path))
    log_in(page, live_server)
    page.goto(f"{live_server.url}/admin/imagegen/sceneset/add/")
    page.fill("#id_name", "Oak table")
    page.select_option("#id_source", "uploaded")
    page.set_input_files("#id_photos", files)
    page.click("input[name=_continue]")
    assert "Added 12 scene photos" in page.inner_text(".messagelist")
    page.screenshot(path=str(output_dir / "scene-set.png"), full_page=True)
    scene_set = SceneSet.objects.get(name="Oak table")
    assert scene_set.photos.count() == 12

    page.goto(f"{live_server.url}/admin/imagegen/sceneset/")
    page.check(f"input[name=_selected_action][value='{scene_set.pk}']")
    page.select_option("select[name=action]", label="Train the scene generator of the selected sets")
    page.click("button[name=index]")
    page.fill("#id_steps", "3")
    page.click("input[name=apply]")
    assert "Queued 1 training job" in page.inner_text(".messagelist")
    training = wait_for_job(Job.objects.get(kind=Job.Kind.TRAIN).pk, timeout=300)
    assert training.state == Job.State.SUCCEEDED, training.error

    run_action(page, live_server, [product.pk], "Put in a scene (new backdrops from a scene set)")
    page.select_option("#id_scene_set", str(scene_set.pk))
    page.fill("#id_variants", "2")
    page.fill("#id_long_side", "512")
    page.screenshot(path=str(output_dir / "scene-confirmation.png"), full_page=True)
    page.click("input[name=apply]")
    assert "Queued 1 put in a scene job" in page.inner_text(".messagelist")
    done = wait_for_job(Job.objects.get(kind=Job.Kind.EDIT).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    images = list(GeneratedImage.objects.filter(job=done).order_by("seed"))
    assert len(images) == 2 and all(i.parameters["scene_set"] == scene_set.pk for i in images)
    page.goto(f"{live_server.url}/admin/imagegen/generatedimage/{images[0].pk}/change/")
    assert page.locator(".imagegen-before-after img").count() == 2
    page.screenshot(path=str(output_dir / "scene-before-after.png"), full_page=True)


def test_the_storage_sweep_keeps_scene_photos(db):
    from imagegen.services import cleanup

    scene_set = scene_sets.create_scene_set(name="Kept")
    photo = scene_sets.add_scene_photo(scene_set, scene_photo(1))
    assert cleanup.is_referenced(photo.image.name) and photo.image.name in cleanup.referenced_names()


def test_a_segment_s_variants_can_be_scenes_which_the_storefront_links_to_it(ready_products):
    from imagegen.storefront import services as storefront
    from imagegen.storefront.models import Segment, Variant

    products = ready_products(2)
    segment = Segment.objects.create(index=0, centroid=[0.0] * 6)
    studio = studio_set()
    jobs = storefront.request_scene_variants(studio, segments=Segment.objects.all(), send=False)
    assert len(jobs) == 2 and all(j.parameters["segment"] == segment.pk for j in jobs)
    assert storefront.request_scene_variants(studio, segments=Segment.objects.all(), send=False) == [], "pending: not twice"
    for job in jobs:
        assert services.execute(job.pk).state == Job.State.SUCCEEDED
    variants = Variant.objects.filter(segment=segment)
    assert variants.count() == 2 and {v.image.kind for v in variants} == {"scene"}
    assert {v.image.product_id for v in variants} == {p.pk for p in products}
    assert storefront.request_scene_variants(studio, segments=Segment.objects.all(), send=False) == [], "made: not twice"
