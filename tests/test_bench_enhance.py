"""Smoke test of bench/enhance.py: it runs end to end and writes what its readers expect."""
import json
import math

import pytest

from .test_bench import demo_dataset, run_script

pytestmark = pytest.mark.slow

DEGRADATIONS = ("noise15", "noise25", "blur", "jpeg20", "downscale2", "downscale4", "underexposed", "overexposed")


def test_enhance_quick_run_scores_every_degradation(tmp_path):
    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script("bench/enhance.py", "--quick", "--data", str(data), "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [json_path] = out.glob("*-enhance.json")
    result = json.loads(json_path.read_text())
    assert result["training"]["steps"] >= 1 and result["data"]["test_photos"] == 3 * 2
    for name in DEGRADATIONS:
        entry = result["degradations"][name]
        contenders = entry["contenders"]
        assert {"input (unchanged)", "ours", "operation (Enhance)", entry["best_classical"]} <= set(contenders), name
        assert len(contenders) >= 4, name  # at least one classical baseline besides the input
        assert entry["operation_ran"] and math.isclose(
            entry["operation_margin_db"],
            contenders["operation (Enhance)"]["psnr"] - contenders[entry["best_classical"]]["psnr"], abs_tol=1e-3), name
        for scores in contenders.values():
            assert math.isfinite(scores["psnr"]) and 0 < scores["ssim"] <= 1, name
        margin = contenders["ours"]["psnr"] - contenders[entry["best_classical"]]["psnr"]
        assert math.isclose(entry["margin_db"], margin, abs_tol=1e-3) and entry["meets_target"] == (margin >= 1.0)
    assert all(seconds > 0 for seconds in result["speed"]["seconds_per_megapixel"].values())
    assert set(result["activation"]["tasks"]) == {"exposure", "colour", "denoise", "jpeg", "deblur", "upscale2", "upscale4"}
    assert isinstance(result["targets"]["operation_never_below"], bool)

    table = json_path.with_suffix(".md").read_text()
    rows = [line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ") and "/" in line]
    assert set(DEGRADATIONS) <= set(rows)
