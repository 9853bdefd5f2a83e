"""Smoke test of bench/scenes.py: its --tiny mode runs end to end and writes every section with finite numbers."""
import json
import math

import pytest

from tests.test_bench import demo_dataset, run_script

pytestmark = pytest.mark.slow

SECTIONS = ("classifier", "scene_generator", "harmonisation", "composites", "realism", "identity", "speed")


def numbers(value):
    """Every int or float inside a JSON value (bools are flags, not numbers)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, (int, float)):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)


def test_scenes_tiny_run_writes_every_section(tmp_path):
    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script("bench/scenes.py", "--tiny", "--data", str(data), "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [json_path] = out.glob("*-scenes.json")
    result = json.loads(json_path.read_text())
    for section in SECTIONS:
        values = list(numbers(result[section]))
        assert values and all(math.isfinite(v) for v in values), section

    generator = result["scene_generator"]
    assert generator["training"]["steps"] >= 1
    assert set(generator["scores"]) == {"ours (scene GAN, EMA)", "copies of the train backdrops",
                                        "studio sweep in their mean colour"}
    assert {"generated", "held-out backdrops"} <= set(generator["near_copies"])
    assert {"none", "reinhard", "histogram", "ours"} <= set(result["harmonisation"]["methods"])
    for source in ("generated", "shop"):
        for name in ("naive", "ours"):
            assert 0.0 <= result["realism"][source][name]["accuracy"] <= 1.0, (source, name)
    identity = result["identity"]
    assert identity["measured"]["composites_checked"] == 2 * result["composites"]["products"]
    # The harmoniser holds its budget by construction (transform.bounded), and an 8-bit product stays 8-bit,
    # so the composite's own rounding cannot push a product pixel (in place, scale 1) past it either.
    assert identity["harmoniser_report"]["over_budget"] == 0
    assert identity["measured"]["over_budget"] == 0
    assert 0.0 <= identity["measured"]["share_over_budget"] <= 1.0
    assert result["speed"]["threads_2"]["composite_seconds"] > 0
    assert set(result["targets"]) and all(isinstance(v, bool) for v in result["targets"].values())
    for name in ("scenes.png", "scenes-backdrops.png", "scenes.md"):
        assert len(list(out.glob(f"*-{name}"))) == 1, name
