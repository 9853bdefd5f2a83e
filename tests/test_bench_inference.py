"""Smoke test of bench/inference.py: its quick run measures the generator and the whole queue (gunicorn,
a private redis-server, real workers, PostgreSQL) and writes what the table reads."""
import json
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.integration


def test_inference_quick_run_measures_the_generator_and_the_queue(tmp_path, output_dir):
    proc = subprocess.run(
        [sys.executable, "bench/inference.py", "--quick", "--out", str(tmp_path), "--timeout", "300",
         "--database-url", "postgres://postgres@127.0.0.1:5432/imagegen_inference_smoke",
         "--redis-port", "6398", "--port", "8781"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    (output_dir / "bench-inference.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(next(tmp_path.glob("*-inference.json")).read_text())

    assert [(r["size"], r["batch"]) for r in result["generator"]] == [(64, 1), (64, 4), (64, 16)]
    assert all(r["images_per_second"] > 0 and r["fast_path"]["precision"] == "fp32" for r in result["generator"])
    off, on = result["queue"]
    assert (off["batching"], on["batching"]) == ("off", "on")
    for row in (off, on):
        assert row["states"] == {"succeeded": row["jobs"]} and row["jobs_with_one_image"] == row["jobs"]
    assert off["passes"] == off["jobs"]  # IMAGEGEN_INFERENCE_MAX_BATCH=1: one job per pass
    assert on["passes"] <= on["jobs"]
    assert "| 1 | on (max 64) | 24 |" in next(tmp_path.glob("*-inference.md")).read_text()
