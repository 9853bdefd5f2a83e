"""The compose stack's front door, for real: nginx runs docker/nginx.conf (only the upstream, the media
folder and the port changed) in front of the live server. It serves the media files Django no longer
serves with DEBUG off, never the checkpoints, and writes the client's address where the app, trusting one
proxy (NUM_PROXIES=1, as compose sets it), counts it, whatever the client wrote in X-Forwarded-For."""
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from django.test import Client

NGINX = Path("/usr/sbin/nginx")
CONF = Path(__file__).resolve().parent.parent / "docker" / "nginx.conf"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def proxy(live_server, settings, tmp_path):
    if not NGINX.exists():
        pytest.fail("nginx is not installed: tests/ensure_services.sh installs it (make test runs that).")
    media = Path(settings.MEDIA_ROOT)
    media.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    site = CONF.read_text()
    for old, new in (
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("proxy_pass http://web:8000;", f"proxy_pass {live_server.url};"),
        ("alias /data/media/;", f"alias {media}/;"),
    ):
        assert old in site, f"docker/nginx.conf no longer has {old!r}"
        site = site.replace(old, new)
    temp = tmp_path / "nginx"
    temp.mkdir()
    main = temp / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\nworker_processes 1;\npid {temp}/nginx.pid;\nerror_log {temp}/error.log;\n"
        "events {}\nhttp {\n  include /etc/nginx/mime.types;\n  access_log off;\n"
        + "".join(f"  {kind}_temp_path {temp}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + site + "\n}\n"
    )
    process = subprocess.Popen([str(NGINX), "-c", str(main), "-p", str(temp)], stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        try:
            requests.get(url + "/media/", timeout=1)
            break
        except requests.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start: {process.stderr.read().decode()[-2000:]}") from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_media_files_are_served_by_the_proxy_and_checkpoints_are_not(proxy, live_server, settings, transactional_db):
    settings.SERVE_MEDIA = False  # as in production: Django answers 404 for /media/
    media = Path(settings.MEDIA_ROOT)
    (media / "imagegen" / "generated").mkdir(parents=True)
    (media / "imagegen" / "models" / "cgan").mkdir(parents=True)
    picture = media / "imagegen" / "generated" / "look.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64))
    (media / "imagegen" / "models" / "cgan" / "weights.pt").write_bytes(os.urandom(64))

    # The app itself has nothing at that URL (the live server's own media handler, a test convenience,
    # would answer; gunicorn has none).
    assert Client().get("/media/imagegen/generated/look.png").status_code == 404
    served = requests.get(proxy + "/media/imagegen/generated/look.png")
    assert served.status_code == 200 and served.content == picture.read_bytes()
    assert served.headers["Content-Type"] == "image/png" and served.headers["X-Content-Type-Options"] == "nosniff"
    assert requests.get(proxy + "/media/imagegen/models/cgan/weights.pt").status_code == 404
    assert requests.get(proxy + "/healthz/").text == "ok", "everything else goes to the app"


def test_through_the_proxy_the_client_is_counted_not_what_it_wrote(proxy, settings, transactional_db):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.IMAGEGEN_THROTTLE_RATES = {"ip": "3/minute"}
    codes = [
        requests.get(proxy + "/api/schema/", headers={"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(4)
    ]
    assert codes == [200, 200, 200, 429]
