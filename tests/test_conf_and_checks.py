"""Settings with defaults, system checks, and the app boundaries (imagegen never imports shop)."""
import ast
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command

from imagegen.conf import DEFAULTS
from imagegen.conf import settings as imagegen_settings

ROOT = Path(__file__).resolve().parent.parent


def test_settings_have_defaults_and_follow_overrides(settings):
    assert imagegen_settings.QUEUE == DEFAULTS["QUEUE"] == "gpu"
    settings.IMAGEGEN_QUEUE = "gpu-big"
    assert imagegen_settings.QUEUE == "gpu-big"
    with pytest.raises(AttributeError, match="IMAGEGEN_QEUE"):
        imagegen_settings.QEUE


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in DEFAULTS if f"IMAGEGEN_{name}" not in readme]
    assert not missing


@pytest.mark.parametrize(
    ("override", "error_id"),
    [
        ({"IMAGEGEN_PRODUCT_MODEL": "shop.Nothing"}, "imagegen.E001"),
        ({"IMAGEGEN_PRODUCT_IMAGE_FIELD": "photo"}, "imagegen.E002"),
        ({"IMAGEGEN_PRODUCT_TEXT_FIELDS": ("name", "blurb")}, "imagegen.E003"),
        ({"IMAGEGEN_TASK_SOFT_TIME_LIMIT": 100, "IMAGEGEN_TASK_TIME_LIMIT": 100}, "imagegen.E004"),
        ({"IMAGEGEN_KINDS": ("cgan", "magic")}, "imagegen.E005"),
        ({"IMAGEGEN_BACKEND": "imagegen.backends.nowhere.Backend"}, "imagegen.E080"),
        ({"IMAGEGEN_DEFAULT_KIND": "diffusion"}, "imagegen.E006"),
        ({"IMAGEGEN_IMAGE_SIZE": 96}, "imagegen.E007"),
        ({"IMAGEGEN_AUTO_ACTIVATE": "sometimes"}, "imagegen.E008"),
        ({"IMAGEGEN_THROTTLE_RATES": {"user": "60 a minute"}}, "imagegen.E014"),
        ({"IMAGEGEN_THROTTLE_RATES": {"jobs": "5/fortnight"}}, "imagegen.E014"),
        ({"IMAGEGEN_MAX_ACTIVE_JOBS_PER_USER": 0}, "imagegen.E015"),
        ({"IMAGEGEN_STOREFRONT_THROTTLE_RATE": "lots"}, "imagegen.E016"),
        ({"IMAGEGEN_SEGMENTS": 0}, "imagegen.E017"),
        ({"IMAGEGEN_BANDIT_EXPLORATION": 1.5}, "imagegen.E017"),
        ({"IMAGEGEN_SEGMENT_MIN_EVENTS": -1}, "imagegen.E017"),
        ({"IMAGEGEN_IMPRESSION_TOKEN_SECONDS": 0}, "imagegen.E060"),
        ({"IMAGEGEN_EVENT_RETENTION_DAYS": "90"}, "imagegen.E060"),
        ({"IMAGEGEN_VARIANT_REMAKE_DELTA_E": -1}, "imagegen.E060"),
        ({"IMAGEGEN_HELD_OUT_SHARE": 0.9}, "imagegen.E028"),
        ({"IMAGEGEN_NEAR_COPY_ALPHA": 0}, "imagegen.E029"),
        ({"IMAGEGEN_NEAR_COPY_PERCENTILE": 100}, "imagegen.E030"),
        ({"IMAGEGEN_R1_GAMMA": -1}, "imagegen.E031"),
        ({"IMAGEGEN_R1_EVERY": 0}, "imagegen.E031"),
    ],
)
def test_system_checks_report_configuration_mistakes(settings, override, error_id):
    for name, value in override.items():
        setattr(settings, name, value)
    ids = {message.id for message in checks.run_checks()}
    assert error_id in ids


def test_default_configuration_passes_the_checks():
    assert not [m for m in checks.run_checks() if m.id and m.id.startswith("imagegen.")]


def test_migrations_are_in_sync(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def _imports(package: str) -> set[str]:
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_imagegen_never_imports_the_host_shop():
    assert "shop" not in _imports("imagegen")


def test_mlcore_knows_nothing_of_django():
    assert not {"django", "imagegen", "shop", "rest_framework", "celery"} & _imports("mlcore")
