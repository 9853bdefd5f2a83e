"""Operations on a product's real photos (enhance, new background) through the services, the API and the
admin: validation, permissions, the source photo never touched, results linked to their source with the
provenance of an edit, and clear failures."""
import io

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from PIL import Image
from rest_framework.test import APIClient

from imagegen import services
from imagegen.models import GeneratedImage, Job, SourcePhoto


@pytest.fixture
def editor(django_user_model):
    user = django_user_model.objects.create_user("editor", password="pw-editor-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="edit_photos"))
    return user


@pytest.fixture
def editor_api(editor):
    client = APIClient()
    client.force_authenticate(editor)
    return client


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("operation", "body", "field"),
    [
        ("enhance", {"upscale": 3}, "upscale"),
        ("enhance", {"upscale": "big"}, "upscale"),
        ("background", {"background": "#12345"}, "background"),
        ("background", {"background": "<script>"}, "background"),
        ("background", {"fill": 2}, "fill"),
        ("background", {"size": 10**6}, "size"),
        ("background", {"source_photo": 999999}, "source_photo"),
    ],
)
def test_bad_options_are_a_400_naming_the_field(editor_api, make_products, operation, body, field):
    (product,) = make_products({"hat": 1})
    reply = editor_api.post(f"/api/products/{product.pk}/{operation}/", body, format="json")
    assert reply.status_code == 400 and field in reply.json(), reply.json()
    assert not Job.objects.exists()


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
        "options": {"background": "#ff8800", "fill": 0.7, "shadow": False, "size": None},
        "source": {"type": "product"},
    }


def test_enhance_without_a_trained_model_fails_with_what_to_do(make_products):
    (product,) = make_products({"hat": 1})
    job = services.request_edit(product, "enhance", send=False)
    done = services.execute(job.pk)
    assert done.state == Job.State.FAILED
    assert "needs a trained restore model" in done.error and "Train" in done.error
    assert not GeneratedImage.objects.exists()


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
