"""What the benchmarks share: logging with elapsed time, the dataset's class folders and photos, timing,
and the description of the machine a result was measured on."""
from __future__ import annotations

import datetime
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_T0 = time.perf_counter()


def log(message: str) -> None:
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp} +{time.perf_counter() - _T0:6.0f}s] {message}", flush=True)


def list_classes(split_dir: Path, limit: int | None, *, at_least: int = 1) -> list[str]:
    """The class folders of a split, sorted (the first ``limit`` of them)."""
    classes = sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < at_least:
        raise SystemExit(f"{split_dir} needs at least {at_least} class folder(s), found {classes}")
    return classes[:limit] if limit else classes


def photo_paths(split_dir: Path, classes: list[str], per_class: int | None) -> list[Path]:
    """The photos of ``classes`` in a split, the first ``per_class`` of each in name order."""
    paths = []
    for name in classes:
        files = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files[:per_class] if per_class else files
    if not paths:
        raise SystemExit(f"no photos of {', '.join(classes)} under {split_dir}")
    return paths


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls after one warm-up call."""
    fn()  # warm-up: first calls pay for allocations and kernel selection
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def machine(threads: int, **extra: Any) -> dict[str, Any]:
    """Platform, CPUs, versions and threads of this run (``extra``: further versions, e.g. opencv)."""
    import torch

    import mlcore

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "mlcore": mlcore.__version__,
        "threads": threads,
        "device": "cpu (no GPU lent)",
        **extra,
    }


def write_results(out: Path, stem: str, result: dict[str, Any], table: str) -> None:
    """``<out>/<stem>.json`` (every figure) and ``.md`` (the table, also printed)."""
    import json

    (out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{stem}.md").write_text(table)
    print(table, flush=True)
    log(f"wrote {out / stem}.json and .md")


def recreate_database(url: str) -> None:
    """Drop and create the run's own database, so every run starts empty."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"refusing odd database name {name!r}")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "clothing-dataset-small"


def fill_defaults(args, quick: dict[str, Any], full: dict[str, Any]):
    """The options left unset take the --quick run's defaults or the full run's."""
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def start_run(args, name: str, argv: list[str] | None) -> tuple[str, str, str]:
    """Threads for torch (and OpenCV, where a benchmark uses it), the results folder, and the run's
    (date, file stem, command line)."""
    import sys

    import torch

    torch.set_num_threads(args.threads)
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    today = datetime.date.today().isoformat()
    tag = getattr(args, "tag", None)
    stem = f"{today}-{name}" + (f"-{tag}" if tag else "")
    command = " ".join([".venv/bin/python", f"bench/{name}.py", *(argv if argv is not None else sys.argv[1:])])
    return today, stem, command
