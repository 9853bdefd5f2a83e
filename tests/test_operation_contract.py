"""The contract every photo operation keeps, run over the registry (``services.operations``): a new operation
is tested by registering it. Its API route is in the schema with its request and a 202 with the job; its
serializer refuses bad options naming the field, through the API and the service alike; its admin actions
are offered with the permission and ask first; applied to a real photo it makes a new image of its declared
kind linked to the photo, which is never changed; and the service's result is what applying it gives.

Behaviour particular to one operation (pixels, masks, backdrops) is in test_photo_operations.py."""
import io

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from PIL import Image
from rest_framework import fields as drf
from rest_framework.test import APIClient

from imagegen import services
from imagegen.models import GeneratedImage, Job
from imagegen.services import operations

OPERATIONS = operations.all_operations()


@pytest.fixture(params=OPERATIONS, ids=[op.name for op in OPERATIONS])
def operation(request):
    return request.param


def trained(kind: str, products):
    """A real (few-step) photo model of ``kind`` trained through the services on ``products``' photos."""
    from imagegen.models import ModelVersion

    job = services.request_photo_model_training([p.pk for p in products], kind=kind, steps=3, batch_size=4, send=False)
    done = services.execute(job.pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    return ModelVersion.objects.get(jobs=done)


# -- the API ------------------------------------------------------------------------------------------------

def test_its_route_is_in_the_schema_with_its_request_and_a_job_in_reply(operation, db):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    post = schema["paths"][f"/api/products/{{product_id}}/{operation.url_path}/"]["post"]
    assert post["operationId"] == f"products_{operation.name}"
    assert post["responses"]["202"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Job"}
    assert post["description"] == operation.api_description and post["description"]
    component = f"{type(operation).__name__}Request"
    content = post["requestBody"]["content"]
    assert {body["schema"]["$ref"] for body in content.values()} == {f"#/components/schemas/{component}"}
    assert ("multipart/form-data" in content) and (("application/x-www-form-urlencoded" in content) != operation.takes_mask)
    properties = schema["components"]["schemas"][component]["properties"]
    assert list(properties) == ["source_photo", *operation.option_names()]


def bad_value(field: drf.Field):
    """A value of the wrong type for ``field``."""
    if isinstance(field, drf.BooleanField):
        return "perhaps"
    if isinstance(field, drf.ChoiceField):
        return "no-such-choice"
    if isinstance(field, (drf.IntegerField, drf.FloatField)):
        return "many"
    if isinstance(field, drf.ListField):
        return "not-a-list"
    return {"not": "a value"}


def test_its_serializer_refuses_bad_options_naming_the_field(operation, editor_api, make_products):
    (product,) = make_products({"hat": 1})
    fields = operation.serializer_class().fields
    for name in operation.option_names():
        value = bad_value(fields[name])
        reply = editor_api.post(f"/api/products/{product.pk}/{operation.url_path}/", {name: value}, format="json")
        assert reply.status_code == 400 and name in reply.json(), (name, reply.json())
        assert all(isinstance(m, str) and m for m in reply.json()[name]), reply.json()
        with pytest.raises(ValidationError) as refused:
            services.request_edit(product, operation.name, options={name: value}, send=False)
        assert name in refused.value.message_dict and refused.value.message_dict[name][0]
    with pytest.raises(ValidationError) as refused:
        services.request_edit(product, operation.name, options={"no_such_option": 1}, send=False)
    assert "no_such_option" in refused.value.message_dict["options"][0]
    assert not Job.objects.exists()


# Particular bad options of the first operations, kept from test_photo_operations.py.
@pytest.mark.parametrize(
    ("operation", "body", "field"),
    [
        ("enhance", {"upscale": 3}, "upscale"),
        ("enhance", {"upscale": "big"}, "upscale"),
        ("background", {"background": "#12345"}, "background"),
        ("background", {"background": "<script>"}, "background"),
        ("background", {"fill": 2}, "fill"),
        ("background", {"size": 10**6}, "size"),
        ("background", {"backdrop": "beach"}, "backdrop"),
        ("background", {"backdrop": "studio", "background": "transparent"}, "backdrop"),
        ("background", {"source_photo": 999999}, "source_photo"),
    ],
)
def test_bad_options_are_a_400_naming_the_field(editor_api, make_products, operation, body, field):
    (product,) = make_products({"hat": 1})
    reply = editor_api.post(f"/api/products/{product.pk}/{operation}/", body, format="json")
    assert reply.status_code == 400 and field in reply.json(), reply.json()
    assert not Job.objects.exists()


# -- the admin ----------------------------------------------------------------------------------------------

def test_its_admin_actions_are_offered_with_the_permissions_and_ask_first(operation, client, django_user_model, make_products):
    (product,) = make_products({"hat": 1})
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.set(Permission.objects.filter(codename__in=["view_product", "change_product"]))
    client.force_login(clerk)
    page = client.get("/admin/shop/product/").content.decode()
    assert f'value="{operation.admin_action}"' not in page
    clerk.user_permissions.add(Permission.objects.get(codename="edit_photos"))
    page = client.get("/admin/shop/product/").content.decode()
    assert f'value="{operation.admin_action}"' in page
    confirm = client.post("/admin/shop/product/", {"action": operation.admin_action, "_selected_action": [product.pk]})
    text = confirm.content.decode()
    assert confirm.status_code == 200 and 'name="apply"' in text and str(operation.admin_title) in text
    assert not Job.objects.exists(), "a confirmation form first"
    if operation.train_action is None:
        return
    assert f'value="{operation.train_action}"' not in page
    clerk.user_permissions.add(Permission.objects.get(codename="train_generator"))
    done = client.post(
        "/admin/shop/product/",
        {"action": operation.train_action, "_selected_action": [product.pk], "apply": "1", "steps": "5", "seed": "0"},
        follow=True,
    )
    assert "Queued training job" in done.content.decode()
    job = Job.objects.get()
    assert job.kind == Job.Kind.TRAIN and job.parameters["kind"] == operation.model_kind and job.parameters["steps"] == 5


# -- applying it --------------------------------------------------------------------------------------------

def _enhance_upscales(result, product, products):
    with Image.open(product.image.path) as photo:
        width, height = photo.size
    assert (result.width, result.height) == (2 * width, 2 * height)


def _brand_look_keeps_size_and_sorts_references(result, product, products):
    assert result.parameters["options"] == {"references": sorted(p.pk for p in products[-2:])}
    with Image.open(product.image.path) as photo:
        assert (result.width, result.height) == photo.size


# Assertions particular to one operation, kept from the tests this contract replaced.
PARTICULAR = {"enhance": _enhance_upscales, "brandlook": _brand_look_keeps_size_and_sorts_references}


def test_applying_it_makes_a_new_image_of_its_kind_linked_to_the_photo_as_the_service_does(operation, make_products):
    from imagegen.services.editing import prepared_options, read_primary_photo
    from imagegen.services.model_registry import load_sampler
    from imagegen.services.provenance import COMPOSITE, EDITED, PNG_XMP_KEY

    products = make_products({"hat": 4, "dress": 4})
    version = trained(operation.model_kind, products) if operation.model_kind and not operation.model_optional else None
    if version is not None:
        assert version.is_active and version.kind == operation.model_kind
    product = products[0]
    original = product.image.read()
    product.image.seek(0)
    options = operation.example_options(products)

    done = services.execute(services.request_edit(product, operation.name, options=options, send=False).pk)
    assert done.state == Job.State.SUCCEEDED, done.error
    # An operation that makes variants stores one image per seed; the first is what ``apply`` alone gives.
    results = list(GeneratedImage.objects.filter(job=done).order_by("seed"))
    assert results and len({r.seed for r in results}) == len(results) == operation.clean(options).get("variants", 1)
    result = results[0]
    assert result.kind == operation.result_kind
    assert result.get_kind_display() == str(operation.result_label or operation.label), "its kind is among the choices"
    assert result.source_image == product.image.name and result.image.name != product.image.name
    assert result.model_version == version and result.review_state == "pending"
    assert {key: result.parameters[key] for key in ("operation", "options", "source")} == {
        "operation": operation.name, "options": operation.clean(options), "source": {"type": "product"}}
    with Image.open(result.image.path) as stored:
        xmp = stored.info[PNG_XMP_KEY]
        pixels = np.asarray(stored)
    assert (EDITED if version else COMPOSITE) in xmp and product.image.name in xmp
    if version is not None:
        assert f"model version {version.pk}" in xmp
    with open(product.image.path, "rb") as fh:
        assert fh.read() == original, "the photo itself is never changed"
    PARTICULAR.get(operation.name, lambda *args: None)(result, product, products)

    model = load_sampler(version) if version is not None else None
    cleaned = operation.clean(options)
    applied = operation.apply(read_primary_photo(product), prepared_options(operation, cleaned), model)
    buffer = io.BytesIO()
    applied.save(buffer, format="PNG")
    with Image.open(buffer) as direct:
        assert np.array_equal(np.asarray(direct), pixels), "the service stores what applying the operation gives"
