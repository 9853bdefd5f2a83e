"""Smoke tests of the benchmark scripts: they run end to end and write what their readers expect."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("reference", "cgan", "cvae")


def run_script(*args: str, timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def demo_dataset(root: Path) -> Path:
    """A train/test tree in the clothing dataset's layout, from the repo's own demo photos (CI has no other)."""
    import shutil

    for category in ("dress", "hat", "longsleeve"):
        photos = sorted((ROOT / "shop" / "demo_catalogue" / category).glob("*.jpg"))
        for split, chosen in (("train", photos[:28]), ("test", photos[28:40])):
            (root / split / category).mkdir(parents=True)
            for photo in chosen:
                shutil.copy(photo, root / split / category / photo.name)
    return root


def test_quality_quick_run_writes_every_kinds_metrics(tmp_path):
    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script(
        "bench/quality.py", "--quick", "--data", str(data), "--kinds", ",".join(KINDS), "--out", str(out), timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [json_path] = out.glob("*-quality.json")
    result = json.loads(json_path.read_text())
    by_kind = {entry["kind"]: entry for entry in result["kinds"]}
    assert list(by_kind) == list(KINDS)
    for name, entry in by_kind.items():
        assert math.isfinite(entry["metrics"]["overall"]["fid"]), name
        assert entry["training"]["steps"] >= 1, name
        if name == "reference":
            assert entry["fid_ratio"] is None and "cas" not in entry["metrics"]
        else:
            assert math.isfinite(entry["fid_ratio"]) and entry["fid_ratio"] > 0, name
            assert 0.0 <= entry["metrics"]["cas"]["cas"] <= 1.0, name
            assert 0.0 <= entry["metrics"]["cas"]["real_accuracy"] <= 1.0, name
    assert result["feature_extractor"]["content_hash"]

    table = json_path.with_suffix(".md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| kind", "| ---"))]
    assert [row.split("|")[1].strip() for row in rows] == list(KINDS)


def test_throughput_help_still_works():
    done = run_script("bench/throughput.py", "--help", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--steps" in done.stdout


def test_brandlook_quick_run_writes_every_methods_metrics(tmp_path):
    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script("bench/brandlook.py", "--quick", "--data", str(data), "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [json_path] = out.glob("*-brandlook.json")
    result = json.loads(json_path.read_text())
    assert result["training"]["steps"] >= 1 and len(result["references"]) == 2
    assert result["machine"]["threads"] == 2
    for name, entry in result["methods"].items():
        assert entry["distance_before_mean"] > 0, name
        assert math.isfinite(entry["distance_after_mean"]) and 0.0 <= entry["share_halved"] <= 1.0, name
        assert 0.0 < entry["edge_ssim_min"] <= entry["edge_ssim_mean"] <= 1.0 + 1e-9, name
        assert entry["seconds_per_megapixel"] >= 0, name
    assert result["methods"]["brand grade (oracle)"]["delta_e_to_grade_mean"] == 0.0
    assert isinstance(result["target"]["met"], bool)

    table = json_path.with_suffix(".md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith(("| method", "| ---"))]
    assert [row.split("|")[1].strip() for row in rows] == list(result["methods"])


def test_inpaint_quick_run_scores_ours_and_both_opencv_baselines(tmp_path):
    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script("bench/inpaint.py", "--quick", "--data", str(data), "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [json_path] = out.glob("*-inpaint.json")
    result = json.loads(json_path.read_text())
    assert result["training"]["steps"] >= 1 and result["data"]["test_photos"] == 3 * 2
    for size, (low, high) in (("small", (0.02, 0.05)), ("large", (0.15, 0.30))):
        entry = result["masks"][size]
        assert low <= entry["coverage_range"][0] <= entry["coverage_range"][1] <= high, size
        assert set(entry["contenders"]) == {"ours", "operation", "Telea", "Navier-Stokes"}, size
        for scores in entry["contenders"].values():
            assert math.isfinite(scores["psnr"]) and -1 < scores["ssim"] <= 1, size
        margins = entry["margins"]
        assert entry["meets_target"] == all(m["psnr"] >= 0.5 for m in margins.values()), size
        assert entry["operation_ran"] and math.isfinite(entry["operation_margin_db"]), size
    expand = result["expand"]
    assert expand["cases"] == 2 * 6 and {"ours", "operation", "Edge colour", "Reflect padding"} <= set(expand["contenders"])
    assert expand["operation_ran"] in ("model", "Edge colour", "Edge pixels repeated", "OpenCV Telea")
    assert (out / expand["picture"]).is_file()
    assert set(result["activation"]["tasks"]) == {"repair_small", "repair_large", "expand"}
    for entries in result["speed"]["seconds_per_megapixel"].values():
        assert len(entries) >= 3 and all(seconds > 0 for seconds in entries.values())
    assert "| small |" in json_path.with_suffix(".md").read_text()


def test_colourways_run_measures_ours_and_the_hue_shift_and_keeps_a_picture(tmp_path):
    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script("bench/colourways.py", "--per-class", "3", "--colours", "2", "--data", str(data), "--out", str(out),
                      timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [json_path] = out.glob("*-colourways.json")
    result = json.loads(json_path.read_text())
    assert {"ours", "hue shift"} <= set(result["summary"])
    ours = result["summary"]["ours"]
    assert ours["cases"] >= 2 and ours["backdrop_pixels_changed"] == 0 and 0 < ours["structure_median"] <= 1
    assert (out / result["picture"]).is_file() and all(v > 0 for v in result["speed"].values())


def test_enhance_detect_run_reports_every_degradation_and_the_clean_photos(tmp_path):
    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script("bench/enhance_detect.py", "--per-class", "2", "--data", str(data), "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [json_path] = out.glob("*-enhance-detect.json")
    rates = json.loads(json_path.read_text())["rates"]
    assert set(rates) == {"clean", "noise15", "noise25", "blur", "jpeg20", "underexposed", "overexposed", "colourcast"}
    assert all(r["photos"] == 6 for r in rates.values()) and rates["clean"]["found_expected"] is None
    assert 0 <= rates["noise25"]["found_expected"] <= 1


def test_specks_run_accounts_for_every_photo_and_never_marks_the_product(tmp_path):
    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script("bench/specks.py", "--per-class", "6", "--data", str(data), "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [json_path] = out.glob("*-specks.json")
    result = json.loads(json_path.read_text())
    assert result["photos"] == 18 == result["judged"] + result["refused_not_plain"] + result["refused_textured"]
    assert result["planted"]["specks"] <= 5 * result["judged"] and result["marked_product_pixels"] == 0
    assert 0 <= result["planted"]["recall"] <= 1


def test_storefront_load_quick_run_loses_no_event(tmp_path):
    """A few seconds of each phase against a real gunicorn: the figures exist and no event is lost (the
    latency target itself is the full run's, on a quiet machine)."""
    out = tmp_path / "out"
    done = run_script(
        "bench/storefront_load.py", "--seconds", "2", "--products", "8", "--shoppers", "60", "--segments", "2",
        "--database-url", "postgres://postgres@127.0.0.1:5432/imagegen_load_smoke", "--redis-db", "13",
        "--port", "8766", "--out", str(out), timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [json_path] = out.glob("*-storefront-load.json")
    result = json.loads(json_path.read_text())
    for phase in ("storefront_paced", "storefront_max", "events"):
        figures = result["phases"][phase]
        assert figures["requests"] > 0 and figures["errors"] == 0, (phase, figures)
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"], (phase, figures)
    events = result["events"]
    assert events["acknowledged"] > 0 and events["lost"] == 0
    # Beyond the acknowledged ones only the requests in flight when a phase ended (one a connection).
    assert 0 <= events["stored"] - events["acknowledged"] <= 2 * 8 * 10
    assert result["impressions"]["stored_including_warmup"] >= result["impressions"]["gets_answered_during_phases"]
    assert result["setup"]["variants"] + result["setup"]["failed_variants"] == 8 * 2 and result["setup"]["variants"] > 0


def test_personalize_quick_run_reports_match_identity_and_ab(tmp_path):
    import re

    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script("bench/personalize.py", "--quick", "--data", str(data), "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    [json_path] = out.glob("*-personalize.json")
    result = json.loads(json_path.read_text())
    settings = result["settings"]
    held_out = result["data"]["held_out_products"]
    assert held_out >= 1 and result["data"]["browse_products"] >= 1 and len(result["data"]["classes"]) == 2

    shoppers, segments = result["shoppers"], result["segments"]
    assert shoppers["count"] == settings["shoppers"] and 0 <= shoppers["segmented"] <= shoppers["count"]
    # The quick run is seeded: some shoppers must click enough for segments, else nothing below is exercised.
    assert 1 <= len(segments) <= settings["segments"]
    assert sum(seg["shoppers"] for seg in segments) == shoppers["segmented"]
    for seg in segments:
        assert re.fullmatch(r"#[0-9a-f]{6}", seg["colour"]) and len(seg["centroid"]) == 6
        assert seg["purity"] is None or 0.0 < seg["purity"] <= 1.0

    assert result["variants_made"] + sum(result["variants_failed"].values()) == held_out * len(segments)

    match = result["match"]
    assert match["pairs"] == shoppers["count"] * held_out
    assert 0 <= match["pairs_shown_a_variant"] <= match["pairs"]
    for group in ("all_shoppers", "pairs_with_variant"):
        for shown in ("original", "personalized"):
            entry = match[group][shown]
            assert 0.0 <= entry["match_mean"] <= 1.0, (group, shown)
            assert math.isclose(entry["ctr_mean"], settings["base_rate"] * entry["match_mean"], abs_tol=1e-3)
    assert 0.0 <= match["share_variant_matches_better"] <= 1.0

    identity = result["identity"]
    assert identity["originals"] == held_out and identity["variants"] == result["variants_made"]
    for key in ("original_accuracy", "original_accuracy_same_products", "variant_accuracy", "variant_agrees_with_original"):
        assert 0.0 <= identity[key] <= 1.0, key
    assert identity["target_met"] == (identity["variant_accuracy"] >= 0.9)
    assert 1 <= result["classifier"]["epochs"] <= result["classifier"]["epochs_asked"]

    ab = result["ab"]
    assert ab["pairs"] == len(ab["runs"]) >= 1
    assert ab["converged"] == sum(run["converged_at"] is not None for run in ab["runs"])
    for run in ab["runs"]:
        assert sum(run["impressions"].values()) == settings["ab_impressions"]
        assert all(run["clicks"][arm] <= run["impressions"][arm] for arm in ("original", "variant"))
        assert run["best"] == max(run["true_ctr"], key=run["true_ctr"].get)
        assert run["converged_at"] is None or settings["ab_window"] <= run["converged_at"] <= settings["ab_impressions"]
        assert 0.0 <= run["final_share_of_best"] <= 1.0

    table = json_path.with_suffix(".md").read_text()
    assert "| original |" in table and "| personalized |" in table
