"""Who gets in, how often, and how much at once: permissions with object-level checks, rate limits per
user and per address, the cap on a user's active jobs, and admin actions that only a POST with CSRF starts.
All over real HTTP (live_server) unless the point is the admin's CSRF check."""
import threading

import pytest
import requests
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.test import Client
from PIL import Image

from imagegen.models import GeneratedImage, Job
from imagegen.services.files import png_file

pytestmark = pytest.mark.slow

PASSWORD = "pw-for-tests-123"


@pytest.fixture
def make_user(django_user_model):
    def make(name: str, *perms: str, staff: bool = True):
        user = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=staff)
        for perm in perms:
            app, codename = perm.split(".")
            user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
        return user

    return make


def session(user=None) -> requests.Session:
    s = requests.Session()
    if user is not None:
        s.auth = (user.username, PASSWORD)
    return s


@pytest.fixture
def image_of(make_products):
    (product,) = make_products({"hat": 1})

    def make(state: str) -> GeneratedImage:
        row = GeneratedImage(product=product, seed=GeneratedImage.objects.count(), review_state=state, width=8, height=8)
        row.image.save("x.png", ContentFile(png_file(Image.new("RGB", (8, 8))).read()), save=True)
        return row

    make.product = product
    return make


# --- object-level permissions ----------------------------------------------------------------------


def test_staff_see_their_own_jobs_and_need_view_job_for_others(live_server, make_user, make_products, transactional_db):
    (product,) = make_products({"hat": 1})
    alice = make_user("alice", "imagegen.generate_images")
    bob = make_user("bob", "imagegen.generate_images")
    supervisor = make_user("carol", "imagegen.view_job")
    api = live_server.url + "/api"
    created = session(alice).post(f"{api}/products/{product.pk}/generate/", json={"count": 1})
    assert created.status_code == 202
    job_url = created.headers["Location"]
    assert session(alice).get(job_url).status_code == 200, "the requester follows their own job"
    assert session(bob).get(job_url).status_code == 403, "another staff user without imagegen.view_job"
    assert session(supervisor).get(job_url).status_code == 200
    assert session().get(job_url).status_code in (401, 403)
    assert session(make_user("shopper", staff=False)).get(job_url).status_code == 403


def test_unapproved_images_do_not_exist_for_the_storefront(live_server, make_user, image_of, transactional_db):
    pending, approved = image_of("pending"), image_of("approved")
    reviewer = make_user("rita", "imagegen.view_generatedimage")
    api = live_server.url + "/api/images"
    assert session().get(f"{api}/{pending.pk}/").status_code == 404
    assert session(make_user("clerk")).get(f"{api}/{pending.pk}/").status_code == 404, "staff without the permission"
    assert session(reviewer).get(f"{api}/{pending.pk}/").json()["review_state"] == "pending"
    assert session().get(f"{api}/{approved.pk}/").json()["id"] == approved.pk
    listed = session().get(f"{live_server.url}/api/products/{image_of.product.pk}/images/").json()["results"]
    assert [i["id"] for i in listed] == [approved.pk]
    assert session().post(f"{api}/{pending.pk}/review/", json={"decision": "approved"}).status_code in (401, 403)
    pending.refresh_from_db()
    assert pending.review_state == "pending"


# --- rate limits -----------------------------------------------------------------------------------


def test_per_user_limit_counts_each_user_apart(live_server, make_user, settings, transactional_db):
    settings.IMAGEGEN_THROTTLE_RATES = {"user": "3/minute"}
    alice, bob = make_user("alice", "imagegen.view_job"), make_user("bob", "imagegen.view_job")
    url = live_server.url + "/api/jobs/999999/"
    assert [session(alice).get(url).status_code for _ in range(4)] == [404, 404, 404, 429]
    assert session(bob).get(url).status_code == 404, "bob has his own allowance"


def test_per_address_limit_holds_whoever_is_signed_in(live_server, make_user, settings, transactional_db):
    settings.IMAGEGEN_THROTTLE_RATES = {"ip": "4/minute"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    url = live_server.url + "/api/jobs/999999/"
    users = [make_user(f"user{i}", "imagegen.view_job") for i in range(5)]
    codes = [session(u).get(url, headers={"X-Forwarded-For": "203.0.113.7"}).status_code for u in users]
    assert codes == [404, 404, 404, 404, 429], "five accounts from one address share its allowance"
    assert session(users[0]).get(url, headers={"X-Forwarded-For": "198.51.100.1"}).status_code == 404


def test_the_schema_is_throttled_too(live_server, settings, transactional_db):
    settings.IMAGEGEN_THROTTLE_RATES = {"ip": "2/minute"}
    codes = [requests.get(live_server.url + "/api/schema/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_limits_are_shared_between_processes_through_redis(live_server, make_user, settings, redis_url, transactional_db):
    """With several web processes the counts must live in a shared cache; Redis here, as in production."""
    from django.core.cache import caches

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_url.rsplit("/", 1)[0] + "/11"}}
    caches["default"].clear()
    settings.IMAGEGEN_THROTTLE_RATES = {"user": "2/minute"}
    alice = make_user("alice", "imagegen.view_job")
    url = live_server.url + "/api/jobs/999999/"
    assert [session(alice).get(url).status_code for _ in range(3)] == [404, 404, 429]
    import redis

    keys = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/11").keys("*throttle_user_*")
    assert keys, "the count is in Redis, where every web process sees it"
    caches["default"].clear()


def test_requests_that_start_work_have_their_own_lower_limit(live_server, make_user, make_products, settings, transactional_db):
    settings.IMAGEGEN_THROTTLE_RATES = {"jobs": "2/minute"}
    (product,) = make_products({"hat": 1})
    alice = make_user("alice", "imagegen.generate_images")
    url = f"{live_server.url}/api/products/{product.pk}/generate/"
    assert [session(alice).post(url, json={"count": 1}).status_code for _ in range(3)] == [202, 202, 429]
    assert Job.objects.count() == 2
    assert session(alice).get(f"{live_server.url}/api/products/{product.pk}/images/").status_code == 200


# --- the cap on active jobs ------------------------------------------------------------------------


def test_a_user_cannot_have_more_active_jobs_than_the_cap(live_server, make_user, make_products, settings, transactional_db):
    settings.IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER = 2
    (product,) = make_products({"hat": 1})
    alice, bob = make_user("alice", "imagegen.generate_images"), make_user("bob", "imagegen.generate_images")
    url = f"{live_server.url}/api/products/{product.pk}/generate/"
    assert [session(alice).post(url, json={"count": 1}).status_code for _ in range(2)] == [202, 202]
    refused = session(alice).post(url, json={"count": 1})
    assert refused.status_code == 429 and "IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER" in refused.json()["detail"]
    assert Job.objects.filter(requested_by=alice).count() == 2
    assert session(bob).post(url, json={"count": 1}).status_code == 202, "the cap is per user"
    Job.objects.filter(requested_by=alice).update(state=Job.State.SUCCEEDED)
    assert session(alice).post(url, json={"count": 1}).status_code == 202, "finished jobs free the slots"


def test_simultaneous_requests_cannot_overshoot_the_cap(live_server, make_user, make_products, settings, transactional_db):
    settings.IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER = 1
    (product,) = make_products({"hat": 1})
    alice = make_user("alice", "imagegen.generate_images")
    url = f"{live_server.url}/api/products/{product.pk}/generate/"
    barrier, codes = threading.Barrier(6), []

    def post():
        s = session(alice)
        barrier.wait()
        codes.append(s.post(url, json={"count": 1}).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [202] + [429] * 5
    assert Job.objects.filter(requested_by=alice).count() == 1


def test_admin_action_over_the_cap_queues_nothing(client, staff_user, make_products, settings):
    settings.IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER = 2
    products = make_products({"hat": 3})
    client.force_login(staff_user)
    reply = client.post(
        "/admin/shop/product/",
        {"action": "generate_images", "_selected_action": [p.pk for p in products], "apply": "1", "count": 1, "seed": 0},
        follow=True,
    )
    assert "IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER" in reply.content.decode()
    assert not Job.objects.exists(), "all products or none"


# --- nothing starts from a GET or without CSRF -----------------------------------------------------


def test_admin_actions_start_only_from_a_post_with_csrf(staff_user, make_products):
    (product,) = make_products({"hat": 1})
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff_user)
    form = {"action": "generate_images", "_selected_action": [product.pk], "apply": "1", "count": 1, "seed": 0}
    browser.get("/admin/shop/product/", form)
    assert not Job.objects.exists(), "a GET carrying the action's fields starts nothing"
    assert browser.post("/admin/shop/product/", form).status_code == 403, "no CSRF token"
    assert not Job.objects.exists()
    token = browser.get("/admin/shop/product/").context["csrf_token"]
    browser.post("/admin/shop/product/", {**form, "csrfmiddlewaretoken": str(token)})
    assert Job.objects.count() == 1


def test_api_writes_with_a_session_need_csrf(live_server, make_user, make_products, transactional_db):
    """Session-authenticated API calls (a browser signed in to the admin) are CSRF-checked like the admin."""
    (product,) = make_products({"hat": 1})
    alice = make_user("alice", "imagegen.generate_images")
    s = requests.Session()
    login_page = s.get(live_server.url + "/admin/login/")
    s.post(
        live_server.url + "/admin/login/",
        data={"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": s.cookies["csrftoken"], "next": "/admin/"},
        headers={"Referer": login_page.url},
    )
    assert "sessionid" in s.cookies
    url = f"{live_server.url}/api/products/{product.pk}/generate/"
    assert s.post(url, json={"count": 1}).status_code == 403
    assert not Job.objects.exists()
    ok = s.post(url, json={"count": 1}, headers={"X-CSRFToken": s.cookies["csrftoken"], "Referer": live_server.url})
    assert ok.status_code == 202 and Job.objects.count() == 1


def test_a_forged_session_cookie_is_no_session_not_a_server_error(live_server, make_user, transactional_db):
    """A quoted cookie may spell a NUL character, which PostgreSQL refuses in the session lookup."""
    for cookie in ['sessionid="\\000aaaaaaaaaa"', "sessionid=../../etc", "sessionid=" + "A" * 32]:
        for path in ("/api/schema/", "/admin/", "/api/products/1/images/"):
            reply = requests.get(live_server.url + path, headers={"Cookie": cookie}, allow_redirects=False)
            assert reply.status_code < 500, (cookie, path, reply.status_code)
    alice = make_user("alice")
    s = requests.Session()
    s.get(live_server.url + "/admin/login/")
    s.post(live_server.url + "/admin/login/", data={"username": "alice", "password": PASSWORD, "csrfmiddlewaretoken": s.cookies["csrftoken"]})
    assert s.get(live_server.url + "/admin/", allow_redirects=False).status_code == 200, "real sessions still work"
    assert alice.is_staff
