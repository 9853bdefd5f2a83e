"""The soak test in its shortened CI form: real workers, a SIGKILLed worker, a Redis restart, nothing lost."""
import json
import subprocess
import sys

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.integration


def test_soak_loses_and_duplicates_nothing_through_a_worker_kill_and_a_redis_restart(tmp_path, output_dir):
    proc = subprocess.run(
        [sys.executable, "bench/soak.py", "--jobs", "200", "--out", str(tmp_path), "--timeout", "300"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    (output_dir / "soak.log").write_text(proc.stdout + proc.stderr)
    result = json.loads(next(tmp_path.glob("*-soak.json")).read_text())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert result["submitted"] == 200 and result["succeeded"] == 200
    assert result["lost"] == 0 and result["duplicated_images"] == 0
    assert [f["fault"].split()[0] for f in result["faults"]] == ["worker", "Redis"]
