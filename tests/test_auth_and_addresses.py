"""Per-address limits that a client cannot dodge with its own X-Forwarded-For, failed sign-ins counted and
refused before the password is hashed, and DRF token authentication; over real HTTP (live_server)."""
import pytest
import requests
from django.contrib.auth.signals import user_login_failed
from django.core import checks

pytestmark = pytest.mark.slow

PASSWORD = "pw-for-tests-123"


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD, is_staff=True)


@pytest.fixture
def hashed_failures():
    """Failed password checks that reached Django's auth backends (each one a full password hash)."""
    seen = []

    def count(sender, credentials, **kwargs):
        seen.append(credentials.get("username"))

    user_login_failed.connect(count)
    yield seen
    user_login_failed.disconnect(count)


def spoofed(n: int) -> dict:
    return {"X-Forwarded-For": f"203.0.113.{n}"}


# --- which address counts -------------------------------------------------------------------------


@pytest.mark.parametrize("proxies", [None, 0])
def test_a_forwarded_for_header_gets_no_new_allowance_without_trusted_proxies(live_server, settings, transactional_db, proxies):
    """DRF read the client's own X-Forwarded-For whenever NUM_PROXIES was unset: one header, one allowance."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
    settings.IMAGEGEN_THROTTLE_RATES = {"ip": "3/minute"}
    url = live_server.url + "/api/schema/"
    assert [requests.get(url, headers=spoofed(i)).status_code for i in range(4)] == [200, 200, 200, 429]


def test_the_storefront_limit_cannot_be_dodged_with_a_forwarded_for_header(live_server, settings, transactional_db):
    settings.IMAGEGEN_STOREFRONT_THROTTLE_RATE = "3/minute"
    url = live_server.url + "/api/storefront/products/999999/images/"
    codes = [requests.get(url, headers=spoofed(i)).status_code for i in range(4)]
    assert codes == [404, 404, 404, 429]


def test_behind_one_trusted_proxy_the_entry_it_wrote_counts_not_the_clients(live_server, settings, transactional_db):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.IMAGEGEN_THROTTLE_RATES = {"ip": "2/minute"}
    url = live_server.url + "/api/schema/"
    # The client writes anything it likes in front; the proxy appends the address it saw.
    forwarded = [{"X-Forwarded-For": f"10.9.9.{i}, 198.51.100.1"} for i in range(3)]
    assert [requests.get(url, headers=h).status_code for h in forwarded] == [200, 200, 429]
    assert requests.get(url, headers={"X-Forwarded-For": "198.51.100.2"}).status_code == 200


def test_a_site_without_debug_must_say_how_many_proxies_it_trusts(settings):
    from imagegen.checks import check_client_address

    settings.DEBUG = False
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": None}
    assert [m.id for m in check_client_address()] == ["imagegen.W010"]
    for proxies in (0, 2):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": proxies}
        assert check_client_address() == []
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": -1}
    assert [m.id for m in check_client_address()] == ["imagegen.E041"]
    settings.DEBUG, settings.REST_FRAMEWORK = True, {**settings.REST_FRAMEWORK, "NUM_PROXIES": None}
    assert check_client_address() == []


# --- failed sign-ins ------------------------------------------------------------------------------


def test_failed_basic_auth_is_refused_per_address_before_the_password_is_hashed(
    live_server, user, settings, hashed_failures, transactional_db
):
    settings.IMAGEGEN_LOGIN_FAILURE_RATES = {"address": "3/hour", "username": None}
    url = live_server.url + "/api/jobs/999999/"
    guesses = [requests.get(url, auth=(f"user{i}", "guess"), headers=spoofed(i)) for i in range(5)]
    assert [r.status_code for r in guesses[:3]] in ([401] * 3, [403] * 3)
    assert [r.status_code for r in guesses[3:]] == [429, 429]
    assert int(guesses[3].headers["Retry-After"]) > 0
    assert len(hashed_failures) == 3, "the refused attempts never reached the password hasher"
    # Refused whoever it is, the right password included: the address is what is blocked.
    assert requests.get(url, auth=("alice", PASSWORD)).status_code == 429


def test_failed_basic_auth_is_refused_per_username_from_any_address(
    live_server, user, django_user_model, settings, hashed_failures, transactional_db
):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.IMAGEGEN_LOGIN_FAILURE_RATES = {"address": None, "username": "2/hour"}
    django_user_model.objects.create_user("bob", password=PASSWORD, is_staff=True)
    url = live_server.url + "/api/jobs/999999/"
    codes = [requests.get(url, auth=("alice", f"guess{i}"), headers=spoofed(i)).status_code for i in range(4)]
    assert codes[2:] == [429, 429] and 429 not in codes[:2], codes
    assert hashed_failures == ["alice", "alice"]
    assert requests.get(url, auth=("bob", PASSWORD), headers=spoofed(9)).status_code == 404, "bob is not blocked"


def test_a_nul_in_the_username_is_a_counted_failure_not_a_server_error(live_server, settings, transactional_db):
    settings.IMAGEGEN_LOGIN_FAILURE_RATES = {"address": "1/hour", "username": None}
    url = live_server.url + "/api/jobs/999999/"
    assert requests.get(url, auth=("ali\x00ce", "x")).status_code in (401, 403)
    assert requests.get(url, auth=("alice", "x")).status_code == 429


def test_login_failure_rates_are_checked(settings):
    from imagegen.checks import check_api_limits

    settings.IMAGEGEN_LOGIN_FAILURE_RATES = {"address": "lots", "username": "5/hour"}
    assert [m.id for m in check_api_limits()] == ["imagegen.E040"]
    settings.IMAGEGEN_LOGIN_FAILURE_RATES = {"adress": "5/hour"}
    assert [m.id for m in check_api_limits()] == ["imagegen.E040"]
    settings.IMAGEGEN_LOGIN_FAILURE_RATES = {"address": "5/hour", "username": None}
    assert not [m for m in check_api_limits() if m.level >= checks.ERROR]


# --- tokens ---------------------------------------------------------------------------------------


def test_a_token_from_the_token_endpoint_authenticates_api_requests(live_server, user, transactional_db):
    got = requests.post(live_server.url + "/api/auth/token/", json={"username": "alice", "password": PASSWORD})
    assert got.status_code == 200, got.text
    token = got.json()["token"]
    url = live_server.url + "/api/jobs/999999/"
    assert requests.get(url).status_code in (401, 403)
    assert requests.get(url, headers={"Authorization": f"Token {token}"}).status_code == 404
    assert requests.get(url, headers={"Authorization": "Token " + "0" * 40}).status_code in (401, 403)
    again = requests.post(live_server.url + "/api/auth/token/", json={"username": "alice", "password": PASSWORD})
    assert again.json()["token"] == token


def test_wrong_passwords_at_the_token_endpoint_are_counted_too(live_server, user, settings, hashed_failures, transactional_db):
    settings.IMAGEGEN_LOGIN_FAILURE_RATES = {"address": None, "username": "2/hour"}
    url = live_server.url + "/api/auth/token/"
    codes = [requests.post(url, json={"username": "alice", "password": f"guess{i}"}).status_code for i in range(4)]
    assert codes == [400, 400, 429, 429]
    assert len(hashed_failures) == 2
    assert requests.post(url, json={"username": "alice", "password": PASSWORD}).status_code == 429


def test_the_schema_documents_token_authentication(live_server, transactional_db):
    schema = requests.get(live_server.url + "/api/schema/?format=json").json()
    assert "tokenAuth" in schema["components"]["securitySchemes"]
    assert "/api/auth/token/" in schema["paths"]
