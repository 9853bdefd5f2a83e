"""Schemathesis against the OpenAPI schema the server itself publishes, over real HTTP: every operation,
as a superuser and anonymously, on a database with real products, jobs and images. No answer may be a 5xx,
and answers with a documented status must match their documented schema.

Per operation and identity it runs schemathesis' coverage phase (boundary and wrong-type values, unexpected
methods: deterministic) and its fuzzing phase in positive and negative mode (FUZZ_EXAMPLES cases each,
derandomized). `make fuzz` runs this file alone with more examples."""
import base64
import io
import json
import os
import re
import time
from collections import Counter, defaultdict

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation

from imagegen.models import BulkOperation, GeneratedImage, Job, SceneSet

from .conftest import demo_photos

pytestmark = pytest.mark.integration

# 100 finds the NUL-in-basic-auth 500 that 25 missed and takes ~45 s on 2 cores; `make fuzz` runs more.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
CHECKS = [not_a_server_error, response_schema_conformance]
ADMIN = ("fuzz-admin", "fuzz-admin-pass")
# Path segment before a path parameter -> the rows whose ids the fuzzer should use for it.
RESOURCES = {"products": "product", "jobs": "job", "images": "image", "bulk": "bulk", "scene-sets": "scene_set"}


@pytest.fixture
def fuzz_queue(settings, redis_url):
    """Generate requests enqueue real tasks: send them to a queue no worker consumes, and delete it after."""
    from kombu import Exchange, Queue

    from shop.celery import app

    name = f"imagegen-fuzz-{os.getpid()}"
    settings.IMAGEGEN_QUEUE = name
    settings.IMAGEGEN_TRAIN_QUEUE = name
    settings.IMAGEGEN_LIGHT_QUEUE = name  # a bulk request sends its one expansion task there
    queue = Queue(name, Exchange(name), routing_key=name)
    yield queue
    with app.connection_for_write() as conn:
        bound = queue(conn.default_channel)
        bound.declare()  # the channel must know the binding to remove it from Redis as well
        bound.delete()


def queued_messages(queue) -> int:
    from shop.celery import app

    with app.connection_for_write() as conn:
        return queue(conn.default_channel).queue_declare(passive=True).message_count


@pytest.fixture
def fuzz_settings(settings):
    # Basic auth hashes the password on every request; the default hasher would make each one take ~0.5 s.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Thousands of requests from one address and one user: the rate limits would answer most of them 429.
    settings.IMAGEGEN_THROTTLE_RATES = {"user": "1000000/minute", "ip": "1000000/minute", "jobs": "1000000/minute"}
    # The token endpoint's fuzzed wrong passwords would block 127.0.0.1's sign-ins, the superuser's included.
    settings.IMAGEGEN_LOGIN_FAILURE_RATES = {"address": None, "username": None}
    # ...and their counts, kept in the cache, would throttle 127.0.0.1 in the tests that run after this one.
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fuzz"}}
    settings.IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER = None
    settings.IMAGEGEN_MAX_ACTIVE_BULK_OPERATIONS_PER_USER = None
    return settings


@pytest.fixture
def fuzz_data(fuzz_settings, make_products, django_user_model):
    """Rows for path parameters to hit: products, jobs in every state, images in every review state."""
    from django.core.files.base import ContentFile
    from PIL import Image

    admin = django_user_model.objects.create_superuser(ADMIN[0], "fuzz@example.com", ADMIN[1])
    products = make_products({"dress": 2, "hat": 1}, with_photos=False)
    jobs = [
        Job.objects.create(kind=Job.Kind.GENERATE, product=products[i % len(products)], state=state,
                           parameters={"count": 1, "seed": i, "kind": "cgan"}, requested_by=admin if i % 2 else None)
        for i, state in enumerate(Job.State.values)
    ]
    png = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(png, "PNG")
    images = []
    for i, state in enumerate(GeneratedImage.ReviewState.values):
        image = GeneratedImage(product=products[0], seed=i, job=jobs[0], review_state=state, width=8, height=8)
        image.image.save("fuzz.png", ContentFile(png.getvalue()), save=False)
        image.save()
        images.append(image)
    bulks = [
        BulkOperation.objects.create(operation=BulkOperation.Operation.GENERATE, state=state, total=len(products),
                                     product_ids=[p.pk for p in products], parameters={"count": 1, "seed": i, "kind": "cgan"},
                                     requested_by=admin if i % 2 else None)
        for i, state in enumerate(BulkOperation.State.values)
    ]
    scene_sets = [SceneSet.objects.create(name=f"Fuzz {source}", source=source) for source in SceneSet.Source.values]
    photo = demo_photos("dress", 1)[0].read_bytes()
    return {"product": [p.pk for p in products], "job": [j.pk for j in jobs], "image": [i.pk for i in images],
            "bulk": [b.pk for b in bulks], "scene_set": [s.pk for s in scene_sets],
            "files": [photo, png.getvalue()]}


@pytest.fixture
def api_schema(live_server, fuzz_settings):
    # An explicit empty config: a schemathesis.toml lying around must not change what CI runs.
    return schemathesis.openapi.from_url(f"{live_server.url}/api/schema/", config=schemathesis.Config(), timeout=30)


def known_ids_for(path: str, ids: dict[str, list[int]]) -> dict[str, list[int]]:
    """{path parameter: existing ids} for the parameters of ``path`` that name a known resource."""
    return {name: ids[RESOURCES[segment]] for segment, name in re.findall(r"([^/{}]+)/\{([^}]+)\}", path)
            if segment in RESOURCES}


def path_is_positive(case) -> bool:
    """False when the path parameters are the part schemathesis made invalid on purpose; leave those alone."""
    component = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
    return component is None or component.mode == GenerationMode.POSITIVE


class Run:
    """Sends cases as one identity and tallies what came back."""

    def __init__(self, who: str, auth: tuple[str, str] | None, tally: "Tally"):
        self.who, self.auth, self.tally = who, auth, tally

    def send(self, operation, case) -> None:
        # A fresh connection per case (no shared requests.Session): on a kept-alive connection the live server
        # answers each request ~40 ms late, which would make this test several times slower.
        response = case.call(auth=self.auth, timeout=30)
        try:
            case.validate_response(response, checks=CHECKS, transport_kwargs={"auth": self.auth})
        except FailureGroup as exc:
            self.tally.problem(operation, case, response, [f"{type(f).__name__}: {f.title}" for f in exc.exceptions])
        self.tally.count(self.who, operation, response.status_code)

    def coverage(self, schema, operation, known: dict) -> None:
        cases = schema.iter_coverage_cases(
            operation, generation_modes=list(GenerationMode),
            generation_config=schema.config.generation_for(operation=operation, phase="coverage"),
        )
        for i, case in enumerate(cases):
            # Coverage puts 0 in every valid path parameter, which no row has: the body and query variations
            # would all stop at the 404. Existing rows, in turn, let them reach the validation.
            if path_is_positive(case):
                for name, ids in known.items():
                    case.path_parameters[name] = str(ids[i % len(ids)])
            self.send(operation, case)

    def uploads(self, operation, known: dict, files: list[bytes]) -> None:
        """Random bytes never decode as an image: send real photos too, so what follows the decoding is reached."""
        for body in operation.body:
            properties = body.definition.get("schema", {}).get("properties", {})
            binary = [name for name, prop in properties.items() if prop.get("format") == "binary"]
            if body.media_type != "multipart/form-data" or not binary:
                continue
            for i, content in enumerate(files):
                path = {name: ids[i % len(ids)] for name, ids in known.items()}
                case = operation.Case(path_parameters=path, body={name: content for name in binary},
                                      media_type=body.media_type)
                self.send(operation, case)

    def fuzz(self, operation, mode: GenerationMode, known: dict) -> None:
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,  # the same cases on every run, so a CI failure reproduces locally
            database=None,
            suppress_health_check=list(HealthCheck),  # generation speed on a busy 2-core machine is not the subject
        )
        @hypothesis.given(case=operation.as_strategy(generation_mode=mode), data=st.data())
        def run(case, data):
            # Random ids almost never exist: about half of the cases address a real row instead.
            if path_is_positive(case):
                for name, ids in known.items():
                    existing = data.draw(st.one_of(st.none(), st.sampled_from(ids)))
                    if existing is not None:
                        case.path_parameters[name] = existing
            self.send(operation, case)

        run()


class Tally:
    def __init__(self):
        self.statuses = Counter()
        self.per_operation = defaultdict(Counter)
        self.per_identity = Counter()
        self.problems = []

    def count(self, who, operation, status: int) -> None:
        self.statuses[status] += 1
        self.per_operation[operation.label][status] += 1
        self.per_identity[who, operation.label] += 1

    def problem(self, operation, case, response, failures: list[str]) -> None:
        self.problems.append({
            "operation": operation.label, "status": response.status_code, "failures": failures,
            "curl": case.as_curl_command(), "body": response.text[:500],
        })

    @property
    def cases(self) -> int:
        return sum(self.statuses.values())

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def test_fuzz_api_has_no_server_errors(live_server, api_schema, fuzz_data, fuzz_queue, output_dir):
    started = time.monotonic()
    operations = [result.ok() for result in api_schema.get_all_operations()]
    identities = {"superuser": ADMIN, "anonymous": None}
    tally = Tally()
    for who, auth in identities.items():
        run = Run(who, auth, tally)
        for operation in operations:
            known = known_ids_for(operation.path, fuzz_data)
            run.coverage(api_schema, operation, known)
            run.uploads(operation, known, fuzz_data["files"])
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                run.fuzz(operation, mode, known)
    took = time.monotonic() - started
    queued = queued_messages(fuzz_queue)
    accepted = tally.statuses[202]

    summary = {
        "schemathesis": schemathesis.__version__,
        "fuzz_examples_per_operation_and_mode": EXAMPLES,
        "identities": list(identities),
        "operations": sorted(op.label for op in operations),
        "cases": tally.cases,
        "status_codes": {str(k): v for k, v in sorted(tally.statuses.items())},
        "per_operation": {label: {str(k): v for k, v in sorted(c.items())}
                          for label, c in sorted(tally.per_operation.items())},
        "server_errors": tally.server_errors,
        "check_failures": len(tally.problems),
        "tasks_in_private_queue": queued,
        "seconds": round(took, 1),
    }
    (output_dir / "fuzz-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output_dir / "fuzz-failures.json").write_text(json.dumps(tally.problems, indent=2) + "\n")
    print(json.dumps(summary, indent=2))

    assert len(operations) >= 4, "the schema lost operations"
    untested = [f"{who} {op.label}" for who in identities for op in operations if not tally.per_identity[who, op.label]]
    assert not untested, f"no cases ran for: {untested}"
    assert tally.server_errors == 0 and not tally.problems, json.dumps(tally.problems[:10], indent=2)
    # Every 202 sent exactly one task, and to the private queue (none can reach another test's worker).
    assert accepted > 0, "no generate request got through: the fuzz never reached the service"
    assert queued == accepted, f"{accepted} generate requests accepted, but {queued} tasks in the private queue"


def test_basic_auth_username_with_nul_is_refused_not_a_server_error(make_products):
    """Found by the fuzz: a NUL in the basic-auth username reached PostgreSQL and every endpoint answered 500."""
    from rest_framework.test import APIClient

    (product,) = make_products({"hat": 1}, with_photos=False)
    credentials = base64.b64encode(b"fuzz\x00admin:secret").decode()
    reply = APIClient().get(f"/api/products/{product.pk}/images/", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert reply.status_code in (401, 403) and reply.json() == {"detail": "Invalid username/password."}
