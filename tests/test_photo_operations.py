"""Operations on a product's real photos (enhance, new background) through the services, the API and the
admin: what each one does in particular, permissions and clear failures. What every operation keeps (its
route and schema, refusing bad options, its admin actions, a new image linked to its untouched source) is
tested over the registry in test_operation_contract.py."""
import io

import pytest
from django.core.files.base import ContentFile
from PIL import Image
from rest_framework.test import APIClient

from imagegen import services
from imagegen.models import GeneratedImage, Job, SourcePhoto

pytestmark = pytest.mark.slow


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_product_without_a_photo_is_refused(editor_api, make_products):
    (product,) = make_products({"hat": 1}, with_photos=False)
    reply = editor_api.post(f"/api/products/{product.pk}/enhance/", {}, format="json")
    assert reply.status_code == 400 and "no photo" in reply.json()["source_photo"][0]
    assert not Job.objects.exists()


def test_someone_else_s_uploaded_photo_cannot_be_named(editor_api, make_products):
    first, second = make_products({"hat": 2})
    photo = services.add_source_photo(second, png_bytes(Image.new("RGB", (64, 64), "red")))
    reply = editor_api.post(f"/api/products/{first.pk}/background/", {"source_photo": photo.pk}, format="json")
    assert reply.status_code == 400 and "source_photo" in reply.json()


def test_editing_needs_the_permission(make_products, django_user_model):
    (product,) = make_products({"hat": 1})
    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("clerk", password="x", is_staff=True))
    assert client.post(f"/api/products/{product.pk}/enhance/", {}, format="json").status_code == 403
    assert APIClient().post(f"/api/products/{product.pk}/enhance/", {}, format="json").status_code in (401, 403)
    assert not Job.objects.exists()


def test_a_valid_request_queues_one_job_with_its_options(editor_api, make_products, django_capture_on_commit_callbacks):
    (product,) = make_products({"hat": 1})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reply = editor_api.post(f"/api/products/{product.pk}/background/", {"background": "#FF8800", "fill": 0.7}, format="json")
    assert reply.status_code == 202
    job = Job.objects.get()
    assert job.kind == Job.Kind.EDIT and job.product == product and len(callbacks) == 1
    assert job.parameters == {
        "operation": "background",
        "options": {"background": "#ff8800", "fill": 0.7, "shadow": False, "size": None, "backdrop": "plain"},
        "source": {"type": "product"},
    }


def test_enhance_without_a_trained_model_runs_the_classical_tools_and_says_so(make_products):
    from imagegen.services.provenance import COMPOSITE, PNG_XMP_KEY

    (product,) = make_products({"hat": 1})
    job = services.request_edit(product, "enhance", options={"tasks": ["exposure", "deblur"], "upscale": 2}, send=False)
    done = services.execute(job.pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    result = GeneratedImage.objects.get(job=done)
    assert result.model_version is None and result.parameters["model_used"] is False
    steps = result.parameters["enhance"]["steps"]
    assert [(s["task"], s["method"], s["measured"]) for s in steps] == [
        ("exposure", "tool", False), ("deblur", "tool", False), ("upscale2", "tool", False)]
    assert steps[1]["tool"] == "Pillow unsharp mask"
    with Image.open(result.image.path) as stored:
        xmp = stored.info[PNG_XMP_KEY]
    assert COMPOSITE in xmp and "deblur by Pillow unsharp mask" in xmp, "no trained model made these pixels"


def test_enhance_auto_on_a_photo_that_needs_nothing_fails_and_stores_nothing(make_products):
    (product,) = make_products({"hat": 1})
    product.image.save("plain.png", ContentFile(png_bytes(Image.new("RGB", (160, 120), (250, 250, 250)))), save=True)
    done = services.execute(services.request_edit(product, "enhance", send=False).pk)
    assert done.state == Job.State.FAILED and "needs no enhancement" in done.error
    assert not GeneratedImage.objects.exists()
    # Enlarging is something to do even so.
    done = services.execute(services.request_edit(product, "enhance", options={"upscale": 2}, send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    assert GeneratedImage.objects.get(job=done).parameters["enhance"]["tasks"] == []


def test_enhance_runs_each_task_by_the_serving_models_validated_choice(restore_version):
    from imagegen.services.provenance import EDITED, PNG_XMP_KEY

    product = restore_version.test_products[0]
    restore_version.is_active = True
    restore_version.metrics = {**restore_version.metrics, "validation": {"photos": 2, "tasks": {
        "denoise": {"method": "model", "model_margin_db": 1.2}, "deblur": {"method": "unchanged", "model_margin_db": -0.4},
        "jpeg": {"method": "tool", "tool": "OpenCV non-local means (gentle)", "model_margin_db": -0.1},
    }}}
    restore_version.save()
    done = services.execute(services.request_edit(product, "enhance", options={"tasks": ["deblur"]}, send=False).pk)
    assert done.state == Job.State.FAILED and "left the photo unchanged" in done.error and "deblur" in done.error
    assert not GeneratedImage.objects.filter(job=done).exists()

    done = services.execute(services.request_edit(product, "enhance", options={"tasks": ["denoise", "jpeg", "deblur"]},
                                                  send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    result = GeneratedImage.objects.get(job=done)
    assert [(s["task"], s["method"]) for s in result.parameters["enhance"]["steps"]] == [
        ("denoise", "model"), ("jpeg", "tool"), ("deblur", "unchanged")]
    assert result.model_version == restore_version and result.parameters["model_used"] is True
    with Image.open(result.image.path) as stored:
        assert EDITED in stored.info[PNG_XMP_KEY] and "denoise by the shop" in stored.info[PNG_XMP_KEY]


def test_a_photo_that_cannot_be_decoded_fails_the_job_with_the_reason(make_products):
    (product,) = make_products({"hat": 1})
    product.image.save("broken.jpg", ContentFile(b"\xff\xd8\xff\xe0 not really a jpeg"), save=True)
    job = services.request_edit(product, "background", send=False)
    done = services.execute(job.pk)
    assert done.state == Job.State.FAILED and "cannot be edited" in done.error and "truncated" in done.error
    assert not GeneratedImage.objects.exists()


def test_a_deleted_uploaded_photo_fails_the_job_clearly(make_products):
    (product,) = make_products({"hat": 1})
    photo = services.add_source_photo(product, png_bytes(Image.new("RGB", (64, 64), "red")))
    job = services.request_edit(product, "background", source_photo=photo.pk, send=False)
    SourcePhoto.objects.filter(pk=photo.pk).delete()
    done = services.execute(job.pk)
    assert done.state == Job.State.FAILED and "no longer exists" in done.error


def test_admin_actions_queue_one_job_per_product_with_a_photo(client, staff_user, make_products):
    with_photo = make_products({"hat": 2})
    (without,) = make_products({"dress": 1}, with_photos=False)
    client.force_login(staff_user)
    ids = [p.pk for p in [*with_photo, without]]
    page = client.post("/admin/shop/product/", {"action": "new_background", "_selected_action": ids})
    assert page.status_code == 200 and b"Pure white" in page.content, "a confirmation form first"
    assert not Job.objects.exists()
    done = client.post(
        "/admin/shop/product/",
        {"action": "new_background", "_selected_action": ids, "apply": "1", "background": "colour", "colour": "#336699",
         "fill": "0.8"},
        follow=True,
    )
    text = done.content.decode()
    assert "Queued 2 new background job(s)" in text and f"skipped: {without}" in text
    assert sorted(Job.objects.values_list("product_id", flat=True)) == sorted(p.pk for p in with_photo)
    assert {j.parameters["options"]["background"] for j in Job.objects.all()} == {"#336699"}


def test_admin_background_form_needs_the_colour_it_names(client, staff_user, make_products):
    (product,) = make_products({"hat": 1})
    client.force_login(staff_user)
    page = client.post(
        "/admin/shop/product/",
        {"action": "new_background", "_selected_action": [product.pk], "apply": "1", "background": "colour", "colour": "",
         "fill": "0.8"},
    )
    assert "Give the brand colour" in page.content.decode() and not Job.objects.exists()


@pytest.fixture
def restore_version(make_products):
    """A real (few-step) restoration model trained through the services on demo photos."""
    from imagegen.models import ModelVersion

    products = make_products({"hat": 4, "dress": 4})
    job = services.request_photo_model_training([p.pk for p in products], kind="restore", steps=3, batch_size=2, send=False)
    done = services.execute(job.pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    version = ModelVersion.objects.get(jobs=done)
    version.test_products = products
    return version


@pytest.mark.parametrize("mode", ["RGBA", "P", "CMYK", "I;16", "exif-rotated"])
def test_enhance_takes_photos_of_every_mode(restore_version, mode):
    product = restore_version.test_products[1]
    picture = Image.new("RGB", (96, 64), (200, 40, 40))
    buffer = io.BytesIO()
    if mode == "CMYK":
        picture.convert("CMYK").save(buffer, format="JPEG")
    elif mode == "I;16":
        Image.new("I;16", (96, 64), 30000).save(buffer, format="PNG")
    elif mode == "exif-rotated":
        exif = Image.Exif()
        exif[0x0112] = 6
        picture.save(buffer, format="JPEG", exif=exif)
    elif mode == "P":
        picture.convert("P").save(buffer, format="PNG", transparency=0)
    else:
        picture.convert("RGBA").save(buffer, format="PNG")
    product.image.save(f"odd-{mode.replace(';', '')}.png", ContentFile(buffer.getvalue()), save=True)
    done = services.execute(services.request_edit(product, "enhance", options={"tasks": ["denoise"]}, send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    result = GeneratedImage.objects.get(job=done)
    expected = (64, 96) if mode == "exif-rotated" else (96, 64)
    assert (result.width, result.height) == expected


def test_admin_trains_a_photo_model_on_the_selection(client, staff_user, make_products):
    products = make_products({"hat": 2})
    client.force_login(staff_user)
    done = client.post(
        "/admin/shop/product/",
        {"action": "train_photo_model", "_selected_action": [p.pk for p in products], "apply": "1", "kind": "restore",
         "steps": "5", "seed": "0"},
        follow=True,
    )
    assert "Queued training job" in done.content.decode()
    job = Job.objects.get()
    assert job.kind == Job.Kind.TRAIN and job.parameters["kind"] == "restore" and job.parameters["steps"] == 5
    assert job.parameters["product_ids"] == sorted(p.pk for p in products)


def trained(kind: str, products) -> "ModelVersion":
    from imagegen.models import ModelVersion

    job = services.request_photo_model_training([p.pk for p in products], kind=kind, steps=3, batch_size=4, send=False)
    done = services.execute(job.pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    return ModelVersion.objects.get(jobs=done)


def test_background_puts_the_product_on_pure_white_with_or_without_a_trained_model(make_products):
    from imagegen.services.provenance import COMPOSITE, EDITED, PNG_XMP_KEY

    products = make_products({"hat": 4, "shoes": 4})
    product = products[0]
    for expected_type in (COMPOSITE, EDITED):
        if expected_type == EDITED:
            version = trained("segment", products)
            assert version.is_active
        job = services.request_edit(product, "background", options={"fill": 0.8, "size": 200}, send=False)
        done = services.execute(job.pk)
        assert done.state == Job.State.SUCCEEDED, done.error
        result = GeneratedImage.objects.get(job=done)
        assert result.kind == "background" and (result.width, result.height) == (200, 200)
        with Image.open(result.image.path) as stored:
            assert expected_type in stored.info[PNG_XMP_KEY]
            pixels = stored.convert("RGB")
            corners = [pixels.getpixel(xy) for xy in [(0, 0), (199, 0), (0, 199), (199, 199)]]
        assert corners == [(255, 255, 255)] * 4, "the frame around the product is pure white"


def test_background_on_a_generated_studio_backdrop_in_the_brand_colour(make_products, editor_api):
    (product,) = make_products({"hat": 1})
    reply = editor_api.post(
        f"/api/products/{product.pk}/background/", {"background": "#3366CC", "backdrop": "studio", "size": 240}, format="json"
    )
    assert reply.status_code == 202, reply.json()
    done = services.execute(Job.objects.get().pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    result = GeneratedImage.objects.get(job=done)
    with Image.open(result.image.path) as stored:
        pixels = stored.convert("RGB")
    top, floor = pixels.getpixel((120, 2)), pixels.getpixel((2, 237))
    # The sweep is the brand colour lit unevenly: blue-dominant everywhere, brighter on the wall than in
    # the floor's corner, and not one flat colour.
    assert top != floor and sum(top) > sum(floor)
    for r, g, b in (top, floor):
        assert b > g > r
    again = services.execute(services.request_edit(product, "background", options=result.parameters["options"], send=False).pk)
    with Image.open(GeneratedImage.objects.get(job=again).image.path) as second:
        assert second.convert("RGB").tobytes() == pixels.tobytes(), "the same backdrop every time"


def test_brand_look_refuses_references_without_photos(editor_api, make_products):
    (product,) = make_products({"hat": 1})
    (bare,) = make_products({"dress": 1}, with_photos=False)
    reply = editor_api.post(f"/api/products/{product.pk}/brand-look/", {"references": [bare.pk, 999999]}, format="json")
    assert reply.status_code == 400 and "no photo" in reply.json()["references"][0]
    assert editor_api.post(f"/api/products/{product.pk}/brand-look/", {"references": []}, format="json").status_code == 400
    assert not Job.objects.exists()


def test_repair_fills_the_marked_region_and_leaves_every_other_pixel(make_products, editor_api):
    import torch
    from torchvision.transforms.functional import pil_to_tensor

    products = make_products({"hat": 4, "dress": 4})
    version = trained("inpaint", products)
    product = products[0]
    bad = editor_api.post(f"/api/products/{product.pk}/repair/", {"regions": [[0.5, 0.5, 0.4, 0.6]]}, format="json")
    assert bad.status_code == 400 and "regions" in bad.json()
    reply = editor_api.post(f"/api/products/{product.pk}/repair/", {"regions": [[0.25, 0.25, 0.5, 0.5]]}, format="json")
    assert reply.status_code == 202
    done = services.execute(Job.objects.get(kind=Job.Kind.EDIT).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    result = GeneratedImage.objects.get(job=done)
    # 8 photos leave none to hold out, so the model was not validated: Telea fills, and the row says no model made it.
    assert version.metrics["validation"] is None and result.kind == "repaired" and result.model_version is None
    assert result.parameters["repair"] | {"choices_from": None} == {
        "task": "repair_small", "method": "tool", "tool": "OpenCV Telea", "measured": False, "choices_from": None}
    with Image.open(product.image.path) as photo, Image.open(result.image.path) as repaired:
        before, after = pil_to_tensor(photo.convert("RGB")), pil_to_tensor(repaired.convert("RGB"))
    height, width = before.shape[1:]
    outside = torch.ones(height, width, dtype=torch.bool)
    outside[round(0.25 * height) : round(0.5 * height), round(0.25 * width) : round(0.5 * width)] = False
    assert torch.equal(before[:, outside], after[:, outside]), "nothing outside the region changes"
    assert not torch.equal(before[:, ~outside], after[:, ~outside]), "the region is filled in"


def test_a_new_photo_model_replaces_the_active_one_whatever_its_categories(make_products):
    first = trained("restore", make_products({"hat": 8}))
    second = trained("restore", make_products({"dress": 8}))
    first.refresh_from_db()
    assert second.is_active and not first.is_active


def stored_masks() -> list[str]:
    from pathlib import Path

    from django.conf import settings

    return [str(p) for p in Path(settings.MEDIA_ROOT, "imagegen", "masks").rglob("*") if p.is_file()]


def mask_png(size, box, *, mode="L", background=0) -> bytes:
    """A mask image of ``size``, white inside ``box`` (left, top, right, bottom in pixels)."""
    from PIL import ImageDraw

    mask = Image.new(mode, size, background)
    ImageDraw.Draw(mask).rectangle(box, fill=255 if mode == "L" else (255, 255, 255, 255))
    return png_bytes(mask)


def test_repair_with_a_mask_image_changes_only_the_painted_pixels(make_products, editor_api):
    import torch
    from torchvision.transforms.functional import pil_to_tensor

    products = make_products({"hat": 4, "dress": 4})
    trained("inpaint", products)
    product = products[0]
    with Image.open(product.image.path) as photo:
        width, height = photo.size
    # Half the photo's size: the mask is scaled up to the photo, so its edge pixels are repaired too.
    small = mask_png((width // 2, height // 2), (width // 8, height // 8, width // 4, height // 4))
    reply = editor_api.post(
        f"/api/products/{product.pk}/repair/", {"mask": ContentFile(small, name="mask.png")}, format="multipart"
    )
    assert reply.status_code == 202, reply.json()
    job = Job.objects.get(kind=Job.Kind.EDIT)
    stored = job.parameters["options"]["mask"]
    assert stored.startswith("imagegen/masks/") and set(job.parameters["options"]) == {"mask"}
    done = services.execute(job.pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    result = GeneratedImage.objects.get(job=done)
    with Image.open(product.image.path) as photo, Image.open(result.image.path) as repaired:
        before, after = pil_to_tensor(photo.convert("RGB")), pil_to_tensor(repaired.convert("RGB"))
    changed = (before != after).any(dim=0)
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert changed.sum() > 0, "the painted region is filled in"
    # Painted: pixels width//8..width//4 of the half-size mask, i.e. width//4..width//2 (+1 at the edge).
    assert rows.min() >= height // 4 - 2 and rows.max() <= height // 2 + 2
    assert cols.min() >= width // 4 - 2 and cols.max() <= width // 2 + 2


def test_a_mask_the_photo_s_size_is_respected_exactly_and_joins_the_rectangles(make_products):
    import torch
    from torchvision.transforms.functional import pil_to_tensor

    products = make_products({"hat": 4, "dress": 4})
    trained("inpaint", products)
    product = products[1]
    with Image.open(product.image.path) as photo:
        width, height = photo.size
    painted = torch.zeros(height, width, dtype=torch.bool)
    painted[2:10, 3:20] = True
    mask = Image.fromarray(painted.numpy().astype("uint8") * 255, mode="L")
    job = services.request_edit(
        product, "repair", options={"regions": [[0.5, 0.5, 0.75, 0.75]]}, mask=png_bytes(mask), send=False
    )
    done = services.execute(job.pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    result = GeneratedImage.objects.get(job=done)
    painted[round(0.5 * height) : round(0.75 * height), round(0.5 * width) : round(0.75 * width)] = True
    with Image.open(product.image.path) as photo, Image.open(result.image.path) as repaired:
        before, after = pil_to_tensor(photo.convert("RGB")), pil_to_tensor(repaired.convert("RGB"))
    assert torch.equal(before[:, ~painted], after[:, ~painted]), "nothing outside the mask and the rectangle changes"
    assert not torch.equal(before[:, 2:10, 3:20], after[:, 2:10, 3:20])


@pytest.mark.parametrize(
    ("mask", "reason"),
    [
        (lambda w, h: mask_png((w, h), (0, 0, 0, 0), background=0)[:40], "not a usable image"),
        (lambda w, h: b"<svg onload=alert(1)>", "not a usable image"),
        (lambda w, h: png_bytes(Image.new("L", (w, h), 0)), "marks nothing"),
        (lambda w, h: png_bytes(Image.new("L", (w, h), 255)), "at most 50%"),
        (lambda w, h: mask_png((w * 2, h), (0, 0, 4, 4)), "proportions"),
        (lambda w, h: mask_png((w, h), (0, 0, w, h), mode="RGBA", background=(0, 0, 0, 0))[:0], "empty"),
        # White but fully transparent marks nothing.
        (lambda w, h: png_bytes(Image.new("RGBA", (w, h), (255, 255, 255, 0))), "marks nothing"),
    ],
)
def test_a_bad_mask_is_a_400_and_stores_nothing(make_products, editor_api, mask, reason):
    (product,) = make_products({"hat": 1})
    with Image.open(product.image.path) as photo:
        width, height = photo.size
    reply = editor_api.post(
        f"/api/products/{product.pk}/repair/",
        {"mask": ContentFile(mask(width, height), name="mask.png")},
        format="multipart",
    )
    assert reply.status_code == 400, reply.json()
    assert reason in reply.json()["mask"][0]
    assert not Job.objects.exists()
    assert not stored_masks()


def test_a_mask_goes_only_with_repair_and_a_job_refused_later_leaves_no_mask(make_products, editor_api, settings):
    (product,) = make_products({"hat": 1})
    with Image.open(product.image.path) as photo:
        size = photo.size
    good = mask_png(size, (0, 0, 8, 8))
    reply = editor_api.post(f"/api/products/{product.pk}/enhance/", {"mask": ContentFile(good, name="m.png")}, format="multipart")
    assert reply.status_code == 400 and "takes no mask" in reply.json()["mask"][0]
    # The mask passes its checks and is stored, then the per-user cap refuses the job: the file goes again.
    settings.IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER = 1
    assert editor_api.post(f"/api/products/{product.pk}/repair/", {"regions": [[0, 0, 0.5, 0.5]]}, format="json").status_code == 202
    reply = editor_api.post(f"/api/products/{product.pk}/repair/", {"mask": ContentFile(good, name="m.png")}, format="multipart")
    assert reply.status_code == 429
    assert Job.objects.count() == 1
    assert not stored_masks()
    # Neither rectangles nor a mask: nothing to repair.
    reply = editor_api.post(f"/api/products/{product.pk}/repair/", {}, format="json")
    assert reply.status_code == 400 and "Mark what to repair" in reply.json()["regions"][0]


def test_a_mask_over_the_upload_byte_limit_is_dropped_while_it_streams_in(make_products, editor_api, settings):
    (product,) = make_products({"hat": 1})
    settings.IMAGEGEN_UPLOAD_MAX_BYTES = 2000
    with Image.open(product.image.path) as photo:
        noisy = Image.effect_noise(photo.size, 80).point(lambda v: 255 if v > 200 else 0)
    data = png_bytes(noisy)
    assert len(data) > 2000
    reply = editor_api.post(f"/api/products/{product.pk}/repair/", {"mask": ContentFile(data, name="m.png")}, format="multipart")
    assert reply.status_code == 400 and "larger than" in reply.json()["mask"][0]
    assert not Job.objects.exists() and not stored_masks()


def test_a_restore_model_is_validated_per_task_on_held_out_photos_against_the_classical_tools(make_products, settings):
    from imagegen.models import ModelVersion
    from imagegen.services.photo_models import hold_out

    products = make_products({"hat": 6, "dress": 6})
    version = trained("restore", products)
    validation = version.metrics["validation"]
    # 12 photos: 2 held out, 10 trained on; the split is the seed's.
    assert validation["photos"] == 2 and version.image_count == 10
    assert hold_out(list(range(12)), 0) == hold_out(list(range(12)), 0)
    assert set(validation["per_degradation"]) >= {"noise15", "blur", "jpeg20", "downscale2", "downscale4", "underexposed"}
    tasks = validation["tasks"]
    assert set(tasks) == {"exposure", "colour", "denoise", "jpeg", "deblur", "upscale2", "upscale4"}
    for name, choice in tasks.items():
        scores = choice["psnr"]
        winner = {"model": "model", "unchanged": "unchanged"}.get(choice["method"]) or choice["tool"]
        # The winner's score is the best; the model wins only by beating every other contender.
        assert scores[winner] == max(scores.values()), (name, choice)
        assert (choice["method"] == "model") == (choice["model_margin_db"] > 0), (name, choice)
    # Its choices keep every task from making photos worse, so it serves whatever the model won.
    assert version.is_active and "held-out photos the model beat the classical tools at" in version.metrics["activation"]
    settings.IMAGEGEN_AUTO_ACTIVATE = "never"
    assert not trained("restore", products).is_active
    assert ModelVersion.objects.filter(kind="restore", is_active=True).count() == 1
    # Too few photos to hold two out and still train on IMAGEGEN_MIN_TRAINING_IMAGES: no validation.
    settings.IMAGEGEN_AUTO_ACTIVATE = "if-better"
    small = trained("restore", products[:9])
    assert small.metrics["validation"] is None and small.image_count == 9


def test_repair_can_find_specks_on_a_plain_backdrop_by_itself_and_refuses_where_that_is_unreliable(make_products):
    from torchvision.transforms.functional import pil_to_tensor

    from .test_background import noise_image, specked

    products = make_products({"hat": 4, "dress": 4})
    trained("inpaint", products)
    product, textured = products[0], products[1]
    image, _, spots = specked()
    product.image.save("specked.png", ContentFile(png_bytes(image)), save=True)
    textured.image.save("textured.png", ContentFile(png_bytes(noise_image((200, 200)))), save=True)

    done = services.execute(services.request_edit(product, "repair", options={"detect": "backdrop_specks"}, send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    with Image.open(GeneratedImage.objects.get(job=done).image.path) as repaired:
        before, after = pil_to_tensor(image), pil_to_tensor(repaired.convert("RGB"))
    changed = (before != after).any(dim=0)
    assert all(bool(changed[y, x]) for x, y in spots), "every speck is filled in"
    assert changed.float().mean() < 0.01, "and little else"

    failed = services.execute(services.request_edit(textured, "repair", options={"detect": "backdrop_specks"}, send=False).pk)
    assert failed.state == Job.State.FAILED and "cannot be found reliably" in failed.error
    assert not GeneratedImage.objects.filter(job=failed).exists()
    with pytest.raises(Exception, match="detect"):
        services.request_edit(product, "repair", options={"detect": "scratches"}, send=False)


def test_admin_repair_without_marks_skips_products_and_with_detection_queues_them(client, staff_user, make_products):
    products = make_products({"hat": 2})
    client.force_login(staff_user)
    ids = [p.pk for p in products]
    nothing = client.post(
        "/admin/shop/product/", {"action": "repair_photos", "_selected_action": ids, "apply": "1"}, follow=True
    )
    assert "Nothing marked to repair, skipped" in nothing.content.decode() and not Job.objects.exists()
    half = client.post(
        "/admin/shop/product/", {"action": "repair_photos", "_selected_action": ids, "apply": "1", "left": "0.1"},
        follow=True,
    )
    assert "all four sides" in half.content.decode() and not Job.objects.exists()
    detect = client.post(
        "/admin/shop/product/",
        {"action": "repair_photos", "_selected_action": ids, "apply": "1", "detect_specks": "on"},
        follow=True,
    )
    assert "Queued 2 repair photos job(s)" in detect.content.decode()
    assert [j.parameters["options"] for j in Job.objects.all()] == [{"detect": "backdrop_specks"}] * 2


def test_a_photo_with_no_product_to_cut_out_fails_the_background_job_with_the_reason(make_products):
    (product,) = make_products({"hat": 1})
    # A plain grey photo: the border model finds nothing that is not backdrop.
    product.image.save("blank.png", ContentFile(png_bytes(Image.new("RGB", (120, 90), (128, 128, 128)))), save=True)
    done = services.execute(services.request_edit(product, "background", send=False).pk)
    assert done.state == Job.State.FAILED and "could not be cut out" in done.error and "Unexpected" not in done.error
    assert not GeneratedImage.objects.filter(job=done).exists()
