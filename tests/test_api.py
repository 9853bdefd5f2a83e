"""The REST API in-process (the worker path is in test_worker_e2e.py): status codes, validation,
permissions and the schema."""
import pytest
from rest_framework.test import APIClient

from imagegen.models import Job


@pytest.fixture
def staff_api(staff_user):
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


def test_generate_for_unknown_product_is_404(staff_api, db):
    reply = staff_api.post("/api/products/999999/generate/", {"count": 1}, format="json")
    assert reply.status_code == 404
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [({"count": 0}, "count"), ({"count": 99}, "count"), ({"seed": -5}, "seed"), ({"count": "many"}, "count"),
     ({"kind": "diffusion-xl"}, "kind")],
)
def test_generate_rejects_bad_parameters_naming_the_field(staff_api, make_products, body, field):
    (product,) = make_products({"hat": 1})
    reply = staff_api.post(f"/api/products/{product.pk}/generate/", body, format="json")
    assert reply.status_code == 400 and field in reply.json()
    assert not Job.objects.exists()


def test_generate_rejects_malformed_json(staff_api, make_products):
    (product,) = make_products({"hat": 1})
    reply = staff_api.post(f"/api/products/{product.pk}/generate/", "{not json", content_type="application/json")
    assert reply.status_code == 400 and "JSON parse error" in reply.json()["detail"]


def test_generate_answers_202_with_location(staff_api, make_products, django_capture_on_commit_callbacks):
    (product,) = make_products({"hat": 1})
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reply = staff_api.post(f"/api/products/{product.pk}/generate/", {"count": 2, "seed": 4}, format="json")
    assert reply.status_code == 202
    job = Job.objects.get()
    assert reply["Location"] == f"http://testserver/api/jobs/{job.pk}/"
    assert reply.json()["state"] == "queued" and job.parameters == {"count": 2, "seed": 4, "kind": "cgan"}
    assert len(callbacks) == 1, "the task is sent once, after commit"


@pytest.mark.parametrize("who", ["anonymous", "shopper", "staff-without-permission"])
def test_only_permitted_staff_can_generate_or_read_jobs(make_products, django_user_model, who):
    (product,) = make_products({"hat": 1})
    client = APIClient()
    if who == "shopper":
        client.force_authenticate(django_user_model.objects.create_user("shopper", password="x"))
    elif who == "staff-without-permission":
        client.force_authenticate(django_user_model.objects.create_user("clerk", password="x", is_staff=True))
    reply = client.post(f"/api/products/{product.pk}/generate/", {"count": 1}, format="json")
    assert reply.status_code in (401, 403)
    job = Job.objects.create(kind=Job.Kind.GENERATE, product=product, parameters={})
    assert client.get(f"/api/jobs/{job.pk}/").status_code in (401, 403)
    assert Job.objects.count() == 1


def test_job_detail_gives_state_and_progress(staff_api, make_products):
    (product,) = make_products({"hat": 1})
    job = Job.objects.create(kind=Job.Kind.GENERATE, product=product, parameters={}, state="running", progress=40)
    body = staff_api.get(f"/api/jobs/{job.pk}/").json()
    assert body["state"] == "running" and body["progress"] == 40
    assert staff_api.get("/api/jobs/987654/").status_code == 404


def test_images_of_unknown_product_is_404_and_bad_filter_is_400(staff_api, make_products):
    assert APIClient().get("/api/products/424242/images/").status_code == 404
    (product,) = make_products({"hat": 1})
    reply = staff_api.get(f"/api/products/{product.pk}/images/?review_state=great")
    assert reply.status_code == 400 and "review_state" in reply.json()


def test_review_needs_permission_and_a_valid_decision(trained_version, staff_api, django_user_model):
    from imagegen import services
    from imagegen.services.generation import request_generation

    services.execute(request_generation(trained_version.test_products[0], count=1, seed=0).pk)
    image = trained_version.test_products[0].generated_images.get()
    assert staff_api.post(f"/api/images/{image.pk}/review/", {"decision": "meh"}, format="json").status_code == 400
    clerk = APIClient()
    clerk.force_authenticate(django_user_model.objects.create_user("clerk", password="x", is_staff=True))
    assert clerk.post(f"/api/images/{image.pk}/review/", {"decision": "approved"}, format="json").status_code == 403
    image.refresh_from_db()
    assert image.review_state == "pending"


def test_openapi_schema_and_docs(db):
    client = APIClient()
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/products/{product_id}/generate/" in paths and "/api/jobs/{id}/" in paths
    assert "202" in paths["/api/products/{product_id}/generate/"]["post"]["responses"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger-ui" in docs.content
    assert b"cdn.jsdelivr" not in docs.content  # served from this server: no network needed
