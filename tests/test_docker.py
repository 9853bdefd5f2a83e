"""Static checks of docker/: the compose file and both Dockerfiles, read and parsed, never built.

No Docker engine runs in CI, so these tests catch what can be seen on paper: a build context or a COPY
source that does not exist, a dependency on an unknown service, env pointing at the wrong host, a root
user, a command that would not start the web app or the GPU worker. No database and no Django needed.
"""
from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import json
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
DOCKER = REPO / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
WEB_DOCKERFILE = DOCKER / "Dockerfile"
GPU_DOCKERFILE = DOCKER / "Dockerfile.gpu"
SERVICE_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


@pytest.fixture(autouse=True)
def _media_root():
    """Overrides tests/conftest.py's fixture of that name: nothing here writes media, and this module must
    run without pytest-django (`-p no:django`), whose `settings` fixture that one needs."""


# --- helpers -----------------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


# What a deployment must set (compose refuses to start without them): no secret has a default.
DEPLOYMENT_ENV = {"SECRET_KEY": "k" * 50, "POSTGRES_PASSWORD": "a-real-password", "HTTPS": "1"}


def interpolate(value, env: dict[str, str] | None = None):
    """Compose-style `${VAR}`, `${VAR:-default}`, `${VAR-default}` and `$$`, resolved against `env`
    (by default the required variables of DEPLOYMENT_ENV and nothing else, i.e. what `docker compose up`
    gets from its defaults)."""
    env = DEPLOYMENT_ENV if env is None else env
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match) -> str:
        if m.group("bare"):
            return env.get(m.group("bare"), "")
        name, op, arg = m.group("name"), m.group("op"), m.group("arg")
        current = env.get(name)
        if op == ":-":
            return current if current else arg
        if op == "-":
            return arg if current is None else current
        if (op == ":?" and not current) or (op == "?" and current is None):
            raise AssertionError(f"${{{name}}} is required: {arg}")
        return current or ""

    parts = value.split("$$")
    return "$".join(_VAR.sub(one, part) for part in parts)


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict:
    return load_compose()["services"]


def environment(service: dict) -> dict:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def build_paths(service: dict) -> tuple[Path, Path]:
    build = service["build"]
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE_FILE.parent / build.get("context", ".")).resolve()
    dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
    return context, dockerfile


def volume_mounts(service: dict) -> list[tuple[str | None, str, str]]:
    """(source, target, type) of each of a service's volumes, short or long syntax."""
    mounts = []
    for item in service.get("volumes", []):
        if isinstance(item, str):
            parts = item.split(":")
            if len(parts) == 1:
                mounts.append((None, parts[0], "volume"))
            else:
                source = parts[0]
                kind = "bind" if source.startswith((".", "/", "~")) else "volume"
                mounts.append((source, parts[1], kind))
        else:
            mounts.append((item.get("source"), item["target"], item.get("type", "volume")))
    return mounts


class Instruction:
    def __init__(self, keyword: str, rest: str, lineno: int):
        self.keyword = keyword.upper()
        self.rest = rest.strip()
        self.lineno = lineno

    @property
    def flags(self) -> dict[str, str]:
        flags = {}
        for word in shlex.split(self.rest):
            if not word.startswith("--"):
                break
            key, _, val = word[2:].partition("=")
            flags.setdefault(key, val)
        return flags

    @property
    def mounts(self) -> list[dict[str, str]]:
        return [
            dict(kv.partition("=")[::2] for kv in word[len("--mount="):].split(","))
            for word in shlex.split(self.rest)
            if word.startswith("--mount=")
        ]

    @property
    def args(self) -> list[str]:
        """Arguments without leading --flags; JSON (exec) form decoded, shell form split like a shell."""
        rest = self.rest
        while rest.startswith("--"):
            rest = rest.split(None, 1)[1] if " " in rest else ""
        if rest.startswith("["):
            return json.loads(rest)
        return shlex.split(rest)

    def __repr__(self) -> str:
        return f"{self.keyword} {self.rest} (line {self.lineno})"


def parse_dockerfile(path: Path) -> list[Instruction]:
    """A small Dockerfile reader: comments, blank lines and backslash continuations (no heredocs)."""
    instructions, buffer, start = [], "", 0
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#") and not buffer and not instructions and "=" in stripped:
            continue  # parser directive, e.g. `# syntax=`
        if stripped.startswith("#") or (not stripped and not buffer):
            continue
        if not buffer:
            start = lineno
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        keyword, _, rest = buffer.partition(" ")
        instructions.append(Instruction(keyword, rest, start))
        buffer = ""
    assert not buffer, f"{path.name}: dangling line continuation"
    return instructions


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    starts = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    assert starts, "no FROM"
    return instructions[starts[-1]:]


def stage_names(instructions: list[Instruction]) -> set[str]:
    names = set()
    for ins in instructions:
        if ins.keyword == "FROM":
            args = ins.args
            if len(args) == 3 and args[1].lower() == "as":
                names.add(args[2])
    return names


def dockerignore_patterns(dockerfile: Path) -> list[str]:
    ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
    if not ignore.exists():
        ignore = REPO / ".dockerignore"
    if not ignore.exists():
        return []
    return [
        line.strip()
        for line in ignore.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Roughly Docker's rule: the last matching pattern wins; a pattern also covers what lies below it."""
    path = path.strip("/").removeprefix("./")
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        candidates = [path] + [path.rsplit("/", n)[0] for n in range(1, path.count("/") + 1)]
        globs = {pat, pat.replace("**/", "")}
        if any(fnmatch.fnmatch(c, g) for c in candidates for g in globs):
            ignored = not negate
    return ignored


def compose_service_dockerfiles() -> dict[str, Path]:
    return {name: build_paths(svc)[1] for name, svc in services().items() if "build" in svc}


def command_of(service_name: str) -> list[str]:
    """The command a compose service runs: its `command:` or else its Dockerfile's CMD."""
    service = services()[service_name]
    command = service.get("command")
    if command is not None:
        return shlex.split(command) if isinstance(command, str) else list(command)
    cmds = [ins for ins in final_stage(parse_dockerfile(build_paths(service)[1])) if ins.keyword == "CMD"]
    assert cmds, f"{service_name}: neither a command nor a CMD"
    return cmds[-1].args


# --- compose -----------------------------------------------------------------------------------------

def test_compose_has_the_expected_services_and_no_version_key():
    compose = load_compose()
    assert "version" not in compose, "`version:` is obsolete in the Compose Specification"
    assert {"postgres", "redis", "web", "gpu-worker"} <= set(compose["services"])


def test_compose_validates_against_the_compose_spec_schema():
    """The Compose Specification's JSON Schema, as vendored by check-jsonschema (read as a file, so none
    of check-jsonschema's own dependencies are imported)."""
    import jsonschema

    spec = importlib.util.find_spec("check_jsonschema")
    assert spec is not None and spec.submodule_search_locations, "check-jsonschema (requirements-dev.txt) is missing"
    schema_file = Path(list(spec.submodule_search_locations)[0]) / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    errors = sorted(validator_class(schema).iter_errors(load_compose()), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


@pytest.mark.parametrize("name", ["postgres", "redis", "migrate", "web", "gpu-worker"])
def test_every_service_has_an_image_or_a_build(name):
    service = services().get(name)
    assert service is not None
    assert service.get("image") or service.get("build"), f"{name} has neither image nor build"


def test_build_contexts_and_dockerfiles_exist():
    built = {name: svc for name, svc in services().items() if "build" in svc}
    assert {"web", "gpu-worker"} <= set(built)
    for name, service in built.items():
        context, dockerfile = build_paths(service)
        assert context == REPO, f"{name}: context {context} is not the repository root"
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        assert dockerfile.is_relative_to(context), f"{name}: the Dockerfile lies outside the context"
    assert build_paths(built["web"])[1] == WEB_DOCKERFILE
    assert build_paths(built["gpu-worker"])[1] == GPU_DOCKERFILE


def test_depends_on_names_existing_services_with_valid_conditions():
    all_services = services()
    for name, service in all_services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: use the long depends_on form with conditions"
        for target, spec in depends.items():
            assert target in all_services, f"{name} depends on unknown service {target}"
            assert target != name
            condition = spec.get("condition")
            assert condition in SERVICE_CONDITIONS, f"{name} -> {target}: condition {condition!r}"
            if condition == "service_healthy":
                assert all_services[target].get("healthcheck"), f"{target} has no healthcheck to wait for"
            if condition == "service_completed_successfully":
                assert all_services[target].get("restart", "no") == "no", f"{target} is not a one-shot service"
    for name in ("web", "gpu-worker"):
        depends = all_services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"


def test_database_healthchecks():
    all_services = services()
    postgres, redis = all_services["postgres"], all_services["redis"]
    assert postgres["image"].split(":")[0] == "postgres" and postgres["image"].split(":")[1].startswith("16")
    assert redis["image"].split(":")[0] == "redis" and redis["image"].split(":")[1].startswith("7")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ping" in " ".join(redis["healthcheck"]["test"])


def test_migrations_run_before_the_app():
    all_services = services()
    migrating = [
        name for name, service in all_services.items()
        if "build" in service and "manage.py migrate" in " ".join(command_of(name))
    ]
    assert migrating, "no service runs `manage.py migrate`"
    if "migrate" in all_services:
        assert migrating == ["migrate"]
        assert build_paths(all_services["migrate"]) == build_paths(all_services["web"])
        for name in ("web", "gpu-worker"):
            assert all_services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_gpu_worker_reserves_one_nvidia_gpu():
    devices = services()["gpu-worker"]["deploy"]["resources"]["reservations"]["devices"]
    nvidia = [d for d in devices if d.get("driver") == "nvidia"]
    assert len(nvidia) == 1
    assert nvidia[0]["capabilities"] == ["gpu"]
    assert int(nvidia[0]["count"]) == 1 or len(nvidia[0].get("device_ids", [])) == 1
    assert "deploy" not in services()["web"], "the web app needs no GPU"


@pytest.mark.parametrize("name", ["web", "gpu-worker"])
def test_app_env_points_at_the_compose_services(name):
    all_services = services()
    env = interpolate(environment(all_services[name]))

    db = urlsplit(env["DATABASE_URL"])
    assert db.scheme in {"postgres", "postgresql"}
    assert db.hostname in all_services and all_services[db.hostname]["image"].startswith("postgres")
    assert (db.port or 5432) == 5432
    pg_env = interpolate(environment(all_services[db.hostname]))
    assert db.username == pg_env["POSTGRES_USER"]
    assert db.password == pg_env["POSTGRES_PASSWORD"]
    assert db.path.lstrip("/") == pg_env["POSTGRES_DB"]

    redis = urlsplit(env["REDIS_URL"])
    assert redis.scheme == "redis"
    assert redis.hostname in all_services and all_services[redis.hostname]["image"].startswith("redis")
    assert (redis.port or 6379) == 6379


def test_worker_uses_cuda_and_web_does_not():
    all_services = services()
    assert interpolate(environment(all_services["gpu-worker"]))["IMAGEGEN_DEVICE"] == "cuda"
    assert interpolate(environment(all_services["web"])).get("IMAGEGEN_DEVICE") in (None, "", "cpu")


def test_web_and_worker_share_the_media_volume_at_media_root():
    all_services = services()
    for name in ("web", "gpu-worker"):
        media_root = interpolate(environment(all_services[name]))["MEDIA_ROOT"]
        mounts = {target: (source, kind) for source, target, kind in volume_mounts(all_services[name])}
        assert mounts.get(media_root) == ("media", "volume"), f"{name}: MEDIA_ROOT {media_root} is not on `media`"


def test_named_volumes_are_declared_and_used():
    compose = load_compose()
    declared = set(compose.get("volumes") or {})
    used = set()
    for name, service in compose["services"].items():
        for source, target, kind in volume_mounts(service):
            assert target.startswith("/"), f"{name}: container path {target!r} is not absolute"
            if kind == "volume" and source:
                assert source in declared, f"{name} uses undeclared volume {source}"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"
    assert {"media", "pgdata"} <= declared


_PORT = re.compile(r"^(?:(?P<ip>[\d.]+|\[[0-9a-fA-F:]+\]):)?(?:(?P<host>\d+(?:-\d+)?):)?(?P<container>\d+(?:-\d+)?)(?:/(?:tcp|udp))?$")


def test_ports_are_well_formed_and_match_exposed_ports():
    dockerfiles = compose_service_dockerfiles()
    published = {}
    for name, service in services().items():
        for port in service.get("ports", []):
            assert isinstance(port, str), f"{name}: quote ports ({port!r}), YAML reads some as base-60 numbers"
            m = _PORT.match(interpolate(port))
            assert m, f"{name}: malformed port {port!r}"
            for part in (m.group("host"), m.group("container")):
                if part:
                    assert all(1 <= int(p) <= 65535 for p in part.split("-")), f"{name}: port out of range {port!r}"
            container_port = m.group("container")
            if name in dockerfiles:
                exposed = {
                    arg.split("/")[0]
                    for ins in parse_dockerfile(dockerfiles[name]) if ins.keyword == "EXPOSE" for arg in ins.args
                }
                assert container_port in exposed, f"{name}: {container_port} is not EXPOSEd by its Dockerfile"
            published.setdefault(name, []).append(container_port)
    assert published.get("proxy") == ["8080"] and "web" not in published, "only nginx faces clients"
    assert "postgres" not in published and "redis" not in published, "keep the databases off the host"


def test_no_hard_coded_secrets():
    compose = load_compose()
    for name, service in compose["services"].items():
        env = environment(service)
        for key in ("SECRET_KEY", "POSTGRES_PASSWORD", "AWS_SECRET_ACCESS_KEY"):
            if env.get(key) is not None:
                assert re.fullmatch(r"\$\{%s(:?[-?][^}]*)?\}" % key, str(env[key])), f"{name}: {key} is hard-coded"
        if env.get("DATABASE_URL"):
            password = re.match(r"^\w+://(?:\$\{[^}]*\}|[^:@/]*):(?P<pw>[^@]*)@", env["DATABASE_URL"])
            assert password, f"{name}: DATABASE_URL has no password part"
            assert re.fullmatch(r"\$\{POSTGRES_PASSWORD(:?[-?][^}]*)?\}", password["pw"]), (
                f"{name}: the database password is hard-coded")


@pytest.mark.parametrize("missing", ["SECRET_KEY", "POSTGRES_PASSWORD", "HTTPS"])
def test_secrets_and_https_must_be_set_there_is_no_default(missing):
    """A stack started without them would run with a guessable key or password (it used to: change-me)."""
    env = {k: v for k, v in DEPLOYMENT_ENV.items() if k != missing}
    for name in ("web", "postgres"):
        service = services()[name]
        if missing in str(environment(service)):
            with pytest.raises(AssertionError, match=f"{missing}.*is required"):
                interpolate(environment(service), env)
            break
    else:
        pytest.fail(f"no service reads {missing}")


def test_proxy_serves_media_from_the_shared_volume_and_forwards_the_client_address():
    """With DEBUG off Django serves no media, so every image URL was a 404 on the compose stack."""
    all_services = services()
    proxy = all_services["proxy"]
    assert proxy["image"].startswith("nginx:")
    mounts = {target: (source, kind) for source, target, kind in volume_mounts(proxy)}
    media_root = interpolate(environment(all_services["web"]))["MEDIA_ROOT"]
    assert mounts.get(media_root) == ("media", "volume")
    conf_source = next(source for source, target, kind in volume_mounts(proxy) if target.startswith("/etc/nginx/"))
    conf = (COMPOSE_FILE.parent / conf_source).read_text()
    media_block = re.search(r"location /media/ \{(?P<body>.*?)\n    \}", conf, re.S)
    assert media_block and f"alias {media_root.rstrip('/')}/;" in media_block["body"]
    assert "return 404" in media_block["body"], "checkpoints in the media volume must not be served"
    assert re.search(r"proxy_pass http://web:8000;", conf)
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;" in conf
    listen = re.search(r"listen (\d+);", conf)[1]
    assert [p.split(":")[-1] for p in proxy["ports"]] == [listen]
    # One proxy appends to X-Forwarded-For, so the app trusts exactly one entry.
    assert interpolate(environment(all_services["web"]))["NUM_PROXIES"] == "1"


# --- Dockerfiles -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dockerfile", [WEB_DOCKERFILE, GPU_DOCKERFILE], ids=["web", "gpu"])
def test_dockerfile_from_lines_are_pinned(dockerfile):
    instructions = parse_dockerfile(dockerfile)
    assert instructions[0].keyword in {"FROM", "ARG"}, "a Dockerfile starts with FROM (or ARG)"
    stages = set()
    for ins in instructions:
        if ins.keyword != "FROM":
            continue
        image = ins.args[0]
        assert image in stages or re.fullmatch(r"[a-z0-9./_-]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?", image), image
        if image not in stages:
            tag = image.split("@")[0].rpartition(":")[2] if ":" in image.split("/")[-1] else ""
            assert tag and tag != "latest" or "@sha256:" in image, f"{dockerfile.name}: {image} is not pinned"
        stages |= stage_names([ins])


def test_web_image_is_python_311_slim():
    image = final_stage(parse_dockerfile(WEB_DOCKERFILE))[0].args[0]
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", image), image


def test_gpu_image_is_a_cuda_base_matching_torchs_cuda():
    instructions = final_stage(parse_dockerfile(GPU_DOCKERFILE))
    image = instructions[0].args[0]
    m = re.fullmatch(r"(?:nvcr\.io/)?nvidia/cuda:(\d+)\.(\d+)\.\d+-(?:base|runtime|cudnn-runtime|cudnn\d*-runtime)-ubuntu(\d+\.\d+)", image)
    assert m, f"{image} is not an NVIDIA CUDA base/runtime image"
    # Python 3.11, like the web image.
    run_text = " ".join(ins.rest for ins in instructions if ins.keyword == "RUN")
    assert re.search(r"python3?\.?11|python install 3\.11", run_text), "the GPU image installs no Python 3.11"

    # torch's wheel pins the CUDA it ships with (torch 2.14: cuda-toolkit[...]==13.0.3 and nvidia-*-cu13).
    # Same major, and an image minor no newer than torch's, so the image's driver check asks no more than torch.
    torch_cuda = torch_cuda_version()
    assert torch_cuda is not None, "the pinned torch should be the registry's CUDA build"
    image_cuda = (int(m.group(1)), int(m.group(2)))
    assert image_cuda[0] == torch_cuda[0], f"image CUDA {image_cuda}, torch's CUDA {torch_cuda}"
    assert torch_cuda[1] is None or image_cuda[1] <= torch_cuda[1], f"image CUDA {image_cuda}, torch's CUDA {torch_cuda}"


def torch_cuda_version() -> tuple[int, int | None] | None:
    try:
        requires = importlib.metadata.requires("torch") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    requires = [r for r in requires if "extra ==" not in r]
    for requirement in requires:
        found = re.match(r"(?:cuda-toolkit|nvidia-cuda-runtime(?:-cu\d+)?)\b[^;]*==\s*(\d+)\.(\d+)", requirement)
        if found:
            return int(found.group(1)), int(found.group(2))
    for requirement in requires:
        found = re.match(r"nvidia-[\w-]+-cu(\d+)\b", requirement)
        if found:
            return int(found.group(1)), None
    return None


@pytest.mark.parametrize("dockerfile", [WEB_DOCKERFILE, GPU_DOCKERFILE], ids=["web", "gpu"])
def test_copy_sources_and_bind_mounts_exist_and_are_not_ignored(dockerfile):
    instructions = parse_dockerfile(dockerfile)
    stages = stage_names(instructions)
    patterns = dockerignore_patterns(dockerfile)
    copied = []
    for ins in instructions:
        if ins.keyword in {"COPY", "ADD"}:
            source_stage = ins.flags.get("from")
            if source_stage is not None:
                assert source_stage in stages or ":" in source_stage, f"{ins}: unknown stage {source_stage}"
                continue
            *sources, _dest = ins.args
            assert sources, f"{ins}: nothing to copy"
            copied += sources
        elif ins.keyword == "RUN":
            copied += [m["source"] for m in ins.mounts if m.get("type") == "bind" and "from" not in m]
    assert copied
    for source in copied:
        assert list(REPO.glob(source)) or (REPO / source).exists(), f"{dockerfile.name}: {source} not in the repository"
        assert not is_ignored(source, patterns), f"{dockerfile.name}: {source} is excluded by the .dockerignore"
    assert "requirements.txt" in {Path(s).name for s in copied}
    for package in ("shop", "imagegen", "mlcore"):
        assert any(s.rstrip("/") in {package, "."} for s in copied), f"{dockerfile.name} does not copy {package}/"


@pytest.mark.parametrize("dockerfile", [WEB_DOCKERFILE, GPU_DOCKERFILE], ids=["web", "gpu"])
def test_dockerignore_keeps_bulky_and_local_paths_out(dockerfile):
    patterns = dockerignore_patterns(dockerfile)
    assert dockerfile.with_name(dockerfile.name + ".dockerignore").is_file()
    for path in (".venv", ".venv/lib/python3.11/site-packages/torch", "var/db.sqlite3", ".git",
                 "test-output/report.html", "bench/results/run.json", "shop/__pycache__/settings.cpython-311.pyc"):
        assert is_ignored(path, patterns), f"{path} would be sent in the build context"
    for path in ("requirements.txt", "manage.py", "shop/settings.py", "mlcore", "imagegen"):
        assert not is_ignored(path, patterns), f"{path} must stay in the build context"


@pytest.mark.parametrize("dockerfile", [WEB_DOCKERFILE, GPU_DOCKERFILE], ids=["web", "gpu"])
def test_image_runs_as_an_unprivileged_user(dockerfile):
    stage = final_stage(parse_dockerfile(dockerfile))
    users = [i for i, ins in enumerate(stage) if ins.keyword == "USER"]
    assert users, f"{dockerfile.name}: no USER, the container would run as root"
    user = stage[users[-1]].args[0].split(":")[0]
    assert user not in {"root", "0"}
    assert not any(ins.keyword == "RUN" for ins in stage[users[-1]:]), "nothing should be installed as the app user"
    created = " ".join(ins.rest for ins in stage[: users[-1]] if ins.keyword == "RUN")
    assert re.search(rf"useradd\b[^&;]*\b{re.escape(user)}\b", created), f"user {user} is never created"


def test_both_images_use_the_same_uid_for_the_shared_media_volume():
    def uid(dockerfile: Path) -> str:
        text = " ".join(ins.rest for ins in parse_dockerfile(dockerfile) if ins.keyword == "RUN")
        m = re.search(r"useradd\b[^&;]*--uid[ =](\d+)", text)
        assert m, f"{dockerfile.name}: useradd without a fixed --uid"
        return m.group(1)

    assert uid(WEB_DOCKERFILE) == uid(GPU_DOCKERFILE)
    assert uid(WEB_DOCKERFILE) != "0"


@pytest.mark.parametrize("dockerfile", [WEB_DOCKERFILE, GPU_DOCKERFILE], ids=["web", "gpu"])
def test_requirements_are_installed(dockerfile):
    runs = [ins for ins in parse_dockerfile(dockerfile) if ins.keyword == "RUN"]
    installs = [ins for ins in runs if re.search(r"\bpip install\b[^&;]*-r \S*requirements\.txt", ins.rest)]
    assert installs, f"{dockerfile.name}: requirements.txt is never installed"


def requirement_names(path: Path) -> set[str]:
    """Names a requirements file asks for, following -r (a -c constraint asks for nothing)."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if not line or line.startswith("#") or line.startswith(("-c", "--constraint")):
            continue
        if line.startswith(("-r", "--requirement")):
            names |= requirement_names(path.parent / line.split(None, 1)[1])
            continue
        assert not line.startswith("-"), f"{path.name}: unexpected option {line!r}"
        names.add(canonicalize_name(Requirement(line).name))
    return names


def pyproject_requirements(extras: set[str]) -> set[str]:
    """Names pyproject.toml's dependencies and the given extras ask for (an extra naming the project itself
    is followed)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    optional = project.get("optional-dependencies", {})
    unknown = extras - set(optional)
    assert not unknown, f"pyproject.toml has no extra {unknown}"
    names = set()
    for line in project["dependencies"] + [r for extra in sorted(extras) for r in optional[extra]]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
            names |= pyproject_requirements(set(requirement.extras))
        else:
            names.add(canonicalize_name(requirement.name))
    return names


def image_installs(dockerfile: Path) -> tuple[set[str], list[Instruction]]:
    """The package names the final stage's installs ask for (from requirements files, pyproject.toml with its
    --extra flags, or the project with [extras]), and its installs that take no dependencies (--no-deps)."""
    names, no_deps = set(), []
    for ins in final_stage(parse_dockerfile(dockerfile)):
        if ins.keyword != "RUN" or not re.search(r"\bpip install\b", ins.rest):
            continue
        words = shlex.split(ins.rest.split("pip install", 1)[1].split("&&")[0])
        if "--no-deps" in words:
            no_deps.append(ins)
            continue
        extras = {words[i + 1] for i, w in enumerate(words[:-1]) if w == "--extra"}
        files = [words[i + 1] for i, w in enumerate(words[:-1]) if w in {"-r", "--requirement"}]
        for name in files:
            if Path(name).name == "pyproject.toml":
                names |= pyproject_requirements(extras)
            else:
                names |= requirement_names(REPO / Path(name).name)
        for word in words:
            project = re.fullmatch(r"\.(?:\[(?P<extras>[\w,-]+)\])?", word)
            if project:
                names |= pyproject_requirements(set(filter(None, (project["extras"] or "").split(","))))
    return names, no_deps


def test_web_image_installs_the_library_without_torch_and_the_worker_image_with_it():
    """The web image (web, migrate, beat) takes django-imagegen without its `worker` extra: nothing of the
    model stack is installed there. The worker image takes the extra."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    worker_only = {canonicalize_name(Requirement(r).name) for r in project["optional-dependencies"]["worker"]}
    assert {"torch", "torchvision"} <= worker_only

    web, web_no_deps = image_installs(WEB_DOCKERFILE)
    assert {"django", "djangorestframework", "celery", "pillow"} <= web, web
    assert "torch" not in web and "torchvision" not in web, f"the web image installs torch: {sorted(web)}"
    assert not web & worker_only, f"the web image installs the worker extra's {sorted(web & worker_only)}"

    gpu, gpu_no_deps = image_installs(GPU_DOCKERFILE)
    assert worker_only <= gpu and web <= gpu, sorted(gpu)

    # The library itself goes in from the wheel the `wheel` stage builds, adding no dependency of its own.
    for dockerfile, installs in ((WEB_DOCKERFILE, web_no_deps), (GPU_DOCKERFILE, gpu_no_deps)):
        assert any(m.get("from") in stage_names(parse_dockerfile(dockerfile)) and ".whl" in ins.rest
                   for ins in installs for m in ins.mounts), f"{dockerfile.name} does not install the wheel"


def test_requirements_txt_is_the_demo_shops_own_packages_under_the_constraints():
    """requirements.txt (the demo shop's packages, in both images) brings no torch either, and every package
    it or pyproject.toml names has an exact pin in constraints.txt."""
    assert not requirement_names(REPO / "requirements.txt") & {"torch", "torchvision"}
    assert "-c constraints.txt" in (REPO / "requirements.txt").read_text().splitlines()
    pinned = {
        canonicalize_name(Requirement(line).name)
        for line in (REPO / "constraints.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#") and "==" in line
    }
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = requirement_names(REPO / "requirements.txt") | pyproject_requirements(set(project["optional-dependencies"]))
    assert wanted <= pinned, f"not pinned in constraints.txt: {sorted(wanted - pinned)}"


def test_every_celery_worker_runs_on_the_worker_image():
    """Workers load models (gpu, train) or cluster shoppers with torch (default): none may run on the web
    image, which has no torch. beat only sends messages."""
    for name, service in services().items():
        if "build" in service and command_of(name)[:4] == ["celery", "-A", "shop", "worker"]:
            assert build_paths(service)[1] == GPU_DOCKERFILE, f"{name} runs a worker on the web image"
    assert build_paths(services()["beat"])[1] == WEB_DOCKERFILE


def test_web_image_collects_static_and_serves_with_gunicorn():
    stage = final_stage(parse_dockerfile(WEB_DOCKERFILE))
    assert any(ins.keyword == "RUN" and "manage.py collectstatic" in ins.rest and "--noinput" in ins.rest
               for ins in stage), "collectstatic does not run at build time"
    cmd = [ins for ins in stage if ins.keyword in {"CMD", "ENTRYPOINT"}][-1]
    assert cmd.rest.startswith("["), "use the exec form, so that gunicorn gets the signals"
    argv = cmd.args
    assert argv[0] == "gunicorn"
    assert argv[1] in {"shop.wsgi", "shop.wsgi:application"}
    bind = argv[argv.index("--bind") + 1] if "--bind" in argv else argv[argv.index("-b") + 1]
    assert bind.startswith("0.0.0.0:"), "gunicorn must listen on all interfaces in a container"
    exposed = {a for ins in stage if ins.keyword == "EXPOSE" for a in ins.args}
    assert bind.rpartition(":")[2] == "8000"
    assert exposed == {"8000"}
    # The module gunicorn loads, without importing Django.
    assert re.search(r"^application\s*=", (REPO / "shop" / "wsgi.py").read_text(), re.M)


def test_web_healthcheck_is_a_valid_command():
    checks = [ins for ins in final_stage(parse_dockerfile(WEB_DOCKERFILE)) if ins.keyword == "HEALTHCHECK"]
    assert checks, "docker/Dockerfile has no HEALTHCHECK"
    _flags, cmd, text = checks[-1].rest.partition("CMD ")
    assert cmd, f"{checks[-1]}: no CMD"
    command = json.loads(text) if text.strip().startswith("[") else ["sh", "-c", text]
    if command[:2] == ["python", "-c"]:
        compile(command[2], "HEALTHCHECK", "exec")
    assert "127.0.0.1:8000" in " ".join(command), "the healthcheck does not ask the web server"


def test_gpu_worker_runs_celery_on_the_gpu_queue_one_process():
    stage = final_stage(parse_dockerfile(GPU_DOCKERFILE))
    cmd = [ins for ins in stage if ins.keyword in {"CMD", "ENTRYPOINT"}][-1]
    assert cmd.rest.startswith("["), "use the exec form, so that celery gets the signals (warm shutdown)"
    for argv in (cmd.args, command_of("gpu-worker")):
        assert argv[:4] == ["celery", "-A", "shop", "worker"], argv
        assert argv[argv.index("-Q") + 1].split(",") == ["gpu"], argv
        concurrency = argv[argv.index("--concurrency") + 1] if "--concurrency" in argv else argv[argv.index("-c") + 1]
        assert concurrency == "1", "one process per GPU"
    assert re.search(r"^app\s*=\s*Celery\(", (REPO / "shop" / "celery.py").read_text(), re.M)


def test_web_service_runs_gunicorn():
    argv = command_of("web")
    assert argv[0] == "gunicorn" and argv[1].startswith("shop.wsgi")


def _queues_of(name: str) -> list[str]:
    argv = command_of(name)
    assert argv[:4] == ["celery", "-A", "shop", "worker"], argv
    return argv[argv.index("-Q") + 1].split(",")


def test_every_imagegen_queue_has_a_worker_and_training_has_its_own_gpu():
    from imagegen.conf import DEFAULTS

    all_services = services()
    workers = {
        name: _queues_of(name) for name, service in all_services.items()
        if "build" in service and command_of(name)[:4] == ["celery", "-A", "shop", "worker"]
    }
    consumed = {queue for queues in workers.values() for queue in queues}
    for setting in ("QUEUE", "TRAIN_QUEUE", "LIGHT_QUEUE"):
        assert DEFAULTS[setting] in consumed, f"no worker consumes IMAGEGEN_{setting} ({DEFAULTS[setting]!r})"
    assert workers["train-worker"] == ["train"] and workers["gpu-worker"] == ["gpu"]
    train = all_services["train-worker"]
    argv = command_of("train-worker")
    assert argv[argv.index("--concurrency") + 1] == "1", "one training process per GPU"
    gpus = {
        name: [d for d in all_services[name]["deploy"]["resources"]["reservations"]["devices"] if d.get("driver") == "nvidia"]
        for name in ("gpu-worker", "train-worker")
    }
    assert gpus["train-worker"][0].get("device_ids") == ["1"], "training must not share inference's GPU 0"
    assert environment(all_services["gpu-worker"]).get("IMAGEGEN_WARM_MODELS") == "1"
    assert train["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
