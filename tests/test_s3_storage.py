"""imagegen's files on a real S3-compatible server: moto in server mode on 127.0.0.1, spoken to over HTTP by
django-storages' S3Storage with the options shop/settings.py gives it when IMAGEGEN_S3_BUCKET is set, and
looked at from outside with boto3 and plain HTTP requests. Nothing here needs the internet."""
import calendar
import re
import runpy
import socket
import time
import uuid
from io import BytesIO
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import boto3
import numpy as np
import pytest
import requests
import torch
from django.db import IntegrityError
from PIL import Image
from rest_framework.test import APIClient

from imagegen import services
from imagegen.models import GeneratedImage, Job, ModelVersion
from imagegen.services import model_registry, near_copies
from imagegen.services.files import atomic_files, png_file
from imagegen.services.generation import request_generation
from imagegen.services.products import product_conditions

ROOT = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
ACCESS_KEY, SECRET_KEY = "imagegen-test-access-key", "imagegen-test-secret-key"
# Short, so that a signed URL's lifetime is visibly the configured one, not the 3600 s default.
EXPIRE_SECONDS = 2
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
UUID_HEX = "[0-9a-f]{32}"

# Some tests reach the database only through fixtures looked up at run time, which pytest-django cannot see.
pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture(scope="module")
def moto_endpoint():
    """moto's S3 server on a free loopback port, with dummy credentials in the environment that boto3
    (inside S3Storage and in the tests) reads."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        env.setenv("AWS_DEFAULT_REGION", REGION)
        # A developer's real AWS profile or session, or a CI proxy, must not leak into requests to loopback.
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            env.delenv(name, raising=False)
        env.setenv("NO_PROXY", "127.0.0.1,localhost")
        env.setenv("no_proxy", "127.0.0.1,localhost")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


def shop_storages(bucket: str, endpoint: str) -> dict:
    """STORAGES exactly as shop/settings.py builds it from the environment a deployment would set."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("IMAGEGEN_S3_BUCKET", bucket)
        env.setenv("AWS_S3_ENDPOINT_URL", endpoint)
        env.setenv("AWS_QUERYSTRING_EXPIRE", str(EXPIRE_SECONDS))
        storages = runpy.run_path(str(ROOT / "shop" / "settings.py"))["STORAGES"]
    assert storages["default"]["BACKEND"] == "storages.backends.s3.S3Storage"
    return storages


class Bucket:
    """The bucket as seen from outside the app: boto3 for listing and reading, plain URLs for HTTP."""

    def __init__(self, endpoint: str, name: str):
        self.endpoint, self.name = endpoint, name
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
        self.client.create_bucket(Bucket=name)

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()

    def unsigned_url(self, key: str) -> str:
        return f"{self.endpoint}/{self.name}/{key}"


@pytest.fixture
def bucket(moto_endpoint, settings) -> Bucket:
    """A fresh bucket, and the default storage (so imagegen's and the products' files) pointed at it."""
    created = Bucket(moto_endpoint, f"imagegen-{uuid.uuid4().hex[:12]}")
    settings.STORAGES = shop_storages(created.name, moto_endpoint)
    return created


@pytest.fixture
def s3_version(bucket, request):
    """conftest's tiny trained cgan, trained only once the storage is S3, so its photos, checkpoint and
    plots live in the bucket."""
    return request.getfixturevalue("trained_version")


def generate(product, count: int, seed: int) -> Job:
    return services.execute(request_generation(product, count=count, seed=seed, send=False).pk)


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(BytesIO(data)).convert("RGB"), dtype=np.int16)


def test_generation_keeps_images_and_checkpoint_in_the_bucket_under_uuid_keys(bucket, s3_version, settings):
    version, product = s3_version, s3_version.test_products[0]
    model_keys = bucket.keys("imagegen/models/")
    # The version's files, its near-copy sheet when it flagged samples, and the feature extractor training trained.
    named = [version.checkpoint, version.sample_grid, version.loss_curve, version.copy_reference, version.near_copy_sheet]
    extractor = ModelVersion.objects.get(kind="features")
    assert model_keys == sorted([f.name for f in named if f] + [extractor.checkpoint.name])
    for key in model_keys:
        assert re.fullmatch(
            rf"imagegen/models/(cgan/{UUID_HEX}(\.pt|-sample_grid\.png|-loss_curve\.png|-near_copies\.png)|features/{UUID_HEX}\.pt)", key
        ), key

    model_registry.clear_cache()  # the job must read the checkpoint back from the bucket
    job = generate(product, count=2, seed=3)
    assert job.state == Job.State.SUCCEEDED, job.error

    rows = list(GeneratedImage.objects.filter(job=job).order_by("seed"))
    assert [row.seed for row in rows] == [3, 4]
    assert bucket.keys("imagegen/images/") == sorted(row.image.name for row in rows)
    for row in rows:
        # The product id and a UUID: nothing a user typed (product names, photo file names) reaches a key.
        assert re.fullmatch(rf"imagegen/images/{product.pk}/{UUID_HEX}\.png", row.image.name), row.image.name
        data = bucket.read(row.image.name)
        assert data.startswith(PNG_MAGIC)
        assert Image.open(BytesIO(data)).size == (row.width, row.height) == (64, 64)
    # Every file went to the bucket, so whatever was read back can only have come from there.
    media = Path(settings.MEDIA_ROOT)
    assert not media.exists() or not [p for p in media.rglob("*") if p.is_file()]

    # The stored checkpoint is plain data that torch loads with weights_only=True...
    checkpoint = torch.load(BytesIO(bucket.read(version.checkpoint.name)), map_location="cpu", weights_only=True)
    assert checkpoint["kind"] == "cgan" and "generator_ema" in checkpoint
    # ...and the sampler the registry loads from the bucket redraws the stored image of seed 3 (a single pass
    # may round a pixel differently from a batched one: at most 1 level of 255).
    model_registry.clear_cache()
    sampler = model_registry.load_sampler(version)
    (redrawn,) = sampler.generate_for([3], **product_conditions(product))
    stored = pixels(bucket.read(rows[0].image.name))
    assert np.abs(np.asarray(redrawn.convert("RGB"), dtype=np.int16) - stored).max() <= 1


def sigv4_signature(url: str) -> str:
    """The SigV4 query signature S3 computes for ``url`` with the test credentials (what it compares)."""
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    signer = S3SigV4QueryAuth(Credentials(ACCESS_KEY, SECRET_KEY), "s3", REGION, expires=EXPIRE_SECONDS)
    unsigned = AWSRequest(method="GET", url=f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}")
    unsigned.context["timestamp"] = dict(query)["X-Amz-Date"]
    return signer.signature(signer.string_to_sign(unsigned, signer.canonical_request(unsigned)), unsigned)


def test_objects_are_private_and_the_api_hands_out_signed_expiring_urls(bucket, s3_version, staff_user):
    product = s3_version.test_products[0]
    job = generate(product, count=2, seed=0)
    assert job.state == Job.State.SUCCEEDED, job.error
    pending, approved = GeneratedImage.objects.filter(job=job).order_by("seed")
    assert services.review(approved, GeneratedImage.ReviewState.APPROVED, user=staff_user) == 1

    for row in (pending, approved):
        # No one gets an object without a signature, approved or not.
        assert requests.get(bucket.unsigned_url(row.image.name), timeout=10).status_code == 403
        grants = bucket.client.get_object_acl(Bucket=bucket.name, Key=row.image.name)["Grants"]
        assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]
        assert all("URI" not in grant["Grantee"] for grant in grants)  # no AllUsers / AuthenticatedUsers

    staff = APIClient()
    staff.force_authenticate(staff_user)
    urls = {item["id"]: item["image"] for item in staff.get(f"/api/products/{product.pk}/images/").json()["results"]}
    anonymous = APIClient().get(f"/api/products/{product.pk}/images/").json()["results"]
    assert set(urls) == {pending.pk, approved.pk} and [item["id"] for item in anonymous] == [approved.pk]
    assert anonymous[0]["image"].split("?")[0] == urls[approved.pk].split("?")[0]

    for row in (pending, approved):
        url = urls[row.pk]
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == bucket.unsigned_url(row.image.name)
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert query["X-Amz-Credential"].startswith(f"{ACCESS_KEY}/")
        # Valid for EXPIRE_SECONDS from when it was made; the expiry is inside what the signature covers.
        assert query["X-Amz-Expires"] == str(EXPIRE_SECONDS)
        signed_at = calendar.timegm(time.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
        assert abs(signed_at - time.time()) < 60
        assert query["X-Amz-Signature"] == sigv4_signature(url)
        reply = requests.get(url, timeout=10)
        assert reply.status_code == 200
        assert reply.content == bucket.read(row.image.name) and reply.content.startswith(PNG_MAGIC)


def test_a_rolled_back_batch_leaves_no_object_in_the_bucket(bucket, make_products):
    """The second image of a job with the same seed breaks imagegen_image_unique_job_seed in PostgreSQL after
    both files were uploaded: the transaction rolls back and atomic_files removes the uploads again."""
    (product,) = make_products({"hat": 1})
    job = Job.objects.create(kind=Job.Kind.GENERATE, product=product, parameters={})
    picture = Image.new("RGB", (8, 8), "red")
    uploaded = []
    with pytest.raises(IntegrityError), atomic_files() as files:
        for _ in range(2):
            row = GeneratedImage(product=product, job=job, seed=1, width=8, height=8)
            files.save(row.image, "generated.png", png_file(picture))
            uploaded.append(row.image.name)
            assert row.image.name in bucket.keys("imagegen/images/")  # really in the bucket before the failure
            row.save()
    assert len(uploaded) == 2 and uploaded[0] != uploaded[1]
    assert bucket.keys("imagegen/images/") == []
    assert not GeneratedImage.objects.exists()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("broken", ["missing bucket", "unreachable endpoint"])
def test_generation_fails_cleanly_when_the_bucket_cannot_be_written(bucket, s3_version, settings, broken):
    product = s3_version.test_products[0]
    model_registry.clear_cache()
    # The worker already holds the model, so the failure comes when the images are saved, where a
    # half-written result could be left behind.
    model_registry.load_sampler(s3_version)
    near_copies.warm(s3_version)
    if broken == "missing bucket":
        missing = f"imagegen-missing-{uuid.uuid4().hex[:8]}"
        imagegen_alias = shop_storages(missing, bucket.endpoint)["default"]
        reason = re.compile(r"NoSuchBucket.*PutObject.*The specified bucket does not exist", re.S)
    else:
        port = closed_port()
        imagegen_alias = shop_storages(bucket.name, f"http://127.0.0.1:{port}")["default"]
        reason = re.compile(
            rf"Could not connect to the endpoint URL: \"http://127\.0\.0\.1:{port}/{bucket.name}/imagegen/images/"
        )
    # imagegen's own alias breaks; the shop's photos stay readable on the default storage.
    settings.STORAGES = {**settings.STORAGES, "imagegen": imagegen_alias}
    settings.IMAGEGEN_STORAGE = "imagegen"

    started = time.monotonic()
    job = generate(product, count=2, seed=9)
    assert job.state == Job.State.FAILED and job.message == "Failed"
    assert reason.search(job.error), job.error
    assert time.monotonic() - started < 60  # botocore's retries give up; the job does not hang
    assert not GeneratedImage.objects.filter(job=job).exists()
    assert job.model_version is None
    assert bucket.keys("imagegen/images/") == []
