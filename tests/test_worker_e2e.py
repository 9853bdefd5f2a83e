"""End to end on the real parts: HTTP requests to a live server, jobs through Redis to a real Celery worker
process, rows in PostgreSQL, files in storage."""
import io
import re
import time

import pytest
import requests
from PIL import Image

from imagegen.models import GeneratedImage, Job, ModelVersion

from .conftest import wait_for_job

pytestmark = pytest.mark.integration


def admin_session(live_server, username: str, password: str) -> requests.Session:
    """A browser-like session logged into the admin through its real login form (CSRF included)."""
    session = requests.Session()
    page = session.get(f"{live_server.url}/admin/login/")
    token = csrf_token(page.text)
    reply = session.post(
        f"{live_server.url}/admin/login/?next=/admin/",
        data={"csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/"},
        headers={"Referer": f"{live_server.url}/admin/login/"},
    )
    assert reply.ok and "/admin/login/" not in reply.url, "admin login failed"
    return session


def csrf_token(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def post_action(session, live_server, action: str, ids: list[int], extra: dict | None = None) -> requests.Response:
    changelist = f"{live_server.url}/admin/shop/product/"
    token = csrf_token(session.get(changelist).text)
    data = {"csrfmiddlewaretoken": token, "action": action, "_selected_action": [str(i) for i in ids], "index": "0"}
    confirm = session.post(changelist, data=data, headers={"Referer": changelist})
    assert confirm.status_code == 200 and 'name="apply"' in confirm.text, "no confirmation form"
    data = {"csrfmiddlewaretoken": csrf_token(confirm.text), "action": action,
            "_selected_action": [str(i) for i in ids], "apply": "1", **(extra or {})}
    return session.post(changelist, data=data, headers={"Referer": changelist})


def poll_job(session: requests.Session, url: str, timeout: float = 180) -> dict:
    """GET the job until it is finished, as an API client would."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = session.get(url).json()
        if body["state"] not in ("queued", "running"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"job at {url} still {body['state']} after {timeout} s")


def test_admin_generate_action_runs_on_the_worker_and_attaches_images(worker, live_server, trained_version, staff_user):
    product = trained_version.test_products[0]
    session = admin_session(live_server, "staff", "staff-pass-123")

    done = post_action(session, live_server, "generate_images", [product.pk], {"count": "3", "seed": "7"})

    assert done.ok and "Queued 1 generate job" in done.text
    job = Job.objects.get(kind=Job.Kind.GENERATE, product=product)
    assert job.requested_by == staff_user
    job = wait_for_job(job.pk)
    assert job.state == Job.State.SUCCEEDED, job.error
    assert job.progress == 100 and job.attempts == 1 and job.model_version == trained_version
    images = GeneratedImage.objects.filter(product=product).order_by("seed")
    assert [i.seed for i in images] == [7, 8, 9]
    for row in images:
        assert row.review_state == GeneratedImage.ReviewState.PENDING and row.job_id == job.pk
        with row.image.open("rb") as fh:
            picture = Image.open(io.BytesIO(fh.read()))
        assert picture.format == "PNG" and picture.size == (64, 64)
        assert 0.0 <= row.quality_score <= 1.0
        # The file is served through real HTTP, too.
        assert session.get(f"{live_server.url}{row.image.url}").headers["Content-Type"] == "image/png"


def test_admin_action_without_csrf_token_is_refused(worker, live_server, trained_version, staff_user):
    session = admin_session(live_server, "staff", "staff-pass-123")
    product = trained_version.test_products[0]
    reply = session.post(
        f"{live_server.url}/admin/shop/product/",
        data={"action": "generate_images", "_selected_action": [product.pk], "apply": "1", "count": "2"},
    )
    assert reply.status_code == 403
    assert not Job.objects.exists()


def test_admin_train_action_registers_an_active_model_version(worker, live_server, make_products, staff_user):
    products = make_products({"skirt": 5, "hat": 5})
    session = admin_session(live_server, "staff", "staff-pass-123")

    done = post_action(
        session, live_server, "train_generator", [p.pk for p in products],
        {"kind": "cgan", "image_size": "64", "steps": "3", "seed": "0"},
    )

    assert done.ok and "Queued training job" in done.text
    job = wait_for_job(Job.objects.get(kind=Job.Kind.TRAIN).pk)
    assert job.state == Job.State.SUCCEEDED, job.error
    version = job.model_version
    assert version.is_active and sorted(version.categories) == ["hat", "skirt"] and version.image_count == 10
    assert version.metrics["steps"] == 3 and version.checkpoint.storage.exists(version.checkpoint.name)
    assert version.sample_grid and version.loss_curve


def test_api_generate_answers_202_then_job_and_images_can_be_read(worker, live_server, trained_version, staff_user):
    product = next(p for p in trained_version.test_products if p.category.slug == "shoes")
    api = requests.Session()
    api.auth = ("staff", "staff-pass-123")

    reply = api.post(f"{live_server.url}/api/products/{product.pk}/generate/", json={"count": 2, "seed": 11})

    assert reply.status_code == 202
    body = reply.json()
    assert reply.headers["Location"].endswith(f"/api/jobs/{body['id']}/") and body["state"] == "queued"
    body = poll_job(api, reply.headers["Location"])
    assert body["state"] == "succeeded" and body["progress"] == 100, body
    images = api.get(f"{live_server.url}/api/products/{product.pk}/images/").json()["results"]
    assert sorted(i["seed"] for i in images) == [11, 12]
    assert all(i["review_state"] == "pending" for i in images)

    # The storefront (anonymous) sees approved images only.
    anonymous = requests.get(f"{live_server.url}/api/products/{product.pk}/images/").json()
    assert anonymous["count"] == 0
    approved = api.post(f"{live_server.url}/api/images/{images[0]['id']}/review/", json={"decision": "approved"})
    assert approved.status_code == 200 and approved.json()["review_state"] == "approved"
    anonymous = requests.get(f"{live_server.url}/api/products/{product.pk}/images/").json()
    assert [i["id"] for i in anonymous["results"]] == [images[0]["id"]]


def test_generating_for_a_category_without_a_model_fails_with_a_clear_reason(worker, live_server, trained_version, make_products, staff_user):
    (pants,) = make_products({"pants": 1})
    api = requests.Session()
    api.auth = ("staff", "staff-pass-123")

    reply = api.post(f"{live_server.url}/api/products/{pants.pk}/generate/", json={"count": 1})

    assert reply.status_code == 202
    job = wait_for_job(reply.json()["id"])
    assert job.state == Job.State.FAILED
    assert "No trained generator covers the category “pants”" in job.error
    assert "Train generator on selected products" in job.error
    assert not GeneratedImage.objects.filter(product=pants).exists()
    assert ModelVersion.objects.exclude(kind="features").count() == 1


@pytest.mark.integration
def test_photo_operations_run_on_the_worker_from_the_admin_and_the_api_with_a_before_after_view(
    worker, live_server, make_products, staff_user
):
    """Enhance needs a trained model: train one from the admin, then enhance from the admin and put the
    photo on white through the API; the image pages show each result next to the photo it came from."""
    products = make_products({"hat": 4, "shoes": 4})
    session = admin_session(live_server, "staff", "staff-pass-123")
    trained = post_action(
        session, live_server, "train_photo_model", [p.pk for p in products], {"kind": "restore", "steps": "3", "seed": "0"}
    )
    assert trained.ok and "Queued training job" in trained.text
    training = wait_for_job(Job.objects.get(kind=Job.Kind.TRAIN).pk)
    assert training.state == Job.State.SUCCEEDED, training.error
    assert ModelVersion.objects.get(jobs=training).kind == "restore"

    product = products[0]
    queued = post_action(session, live_server, "enhance_photos", [product.pk], {"upscale": "2"})
    assert "Queued 1 enhance photos job(s)" in queued.text
    enhance = wait_for_job(Job.objects.get(kind=Job.Kind.EDIT).pk)
    assert enhance.state == Job.State.SUCCEEDED, enhance.error

    api = requests.Session()
    api.auth = ("staff", "staff-pass-123")
    reply = api.post(f"{live_server.url}/api/products/{product.pk}/background/", json={"fill": 0.8})
    assert reply.status_code == 202
    body = poll_job(api, reply.headers["Location"])
    assert body["state"] == "succeeded", body["error"]

    for kind in ("enhanced", "background"):
        image = GeneratedImage.objects.get(product=product, kind=kind)
        assert image.source_image == product.image.name
        page = session.get(f"{live_server.url}/admin/imagegen/generatedimage/{image.pk}/change/")
        assert page.ok and "imagegen-before-after" in page.text
        urls = re.findall(r'<img src="([^"]+)" alt="(before|after)"', page.text)
        assert [alt for _, alt in urls] == ["before", "after"]
        for url, _ in urls:
            served = session.get(url if url.startswith("http") else live_server.url + url)
            assert served.ok and served.headers["Content-Type"].startswith("image/")
        assert urls[0][0].endswith(product.image.name)
