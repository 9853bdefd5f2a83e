"""Distributed training (DDP under torchrun, 2 CPU processes, gloo): it trains, every rank ends with the
same weights, only rank 0 writes, resuming (also after torchrun restarts a dead rank) continues exactly,
world size 1 equals the plain trainer, and ``train_imagegen --nproc 2`` registers one model version."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command

from mlcore.checkpoint import load_checkpoint

from .ddp_run import build, state_hashes

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def torchrun(nproc: int, *args: str, restarts: int = 0, timeout: int = 120) -> None:
    """Run tests/ddp_run.py under torchrun with ``nproc`` CPU processes of one torch thread each."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
        "--max-restarts", str(restarts), "tests/ddp_run.py", *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]


def reports(folder: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("rank*.json"))]


def test_two_processes_train_to_identical_weights_and_only_rank_0_writes(tmp_path):
    torchrun(2, "--steps", "4", "--report", str(tmp_path / "report"), "--save", str(tmp_path / "saved"))

    rank0, rank1 = reports(tmp_path / "report")
    assert (rank0["rank"], rank1["rank"]) == (0, 1)
    for rank in (rank0, rank1):
        assert rank["step"] == 4 and rank["world_size"] == 2 and rank["global_batch_size"] == 8
        assert all(torch.isfinite(torch.tensor(value)) for value in rank["losses"].values())
    # Each rank trained on its own batches (its own losses), yet every weight, EMA and optimizer state agree.
    assert rank0["losses"] != rank1["losses"]
    assert rank0["hashes"] == rank1["hashes"]
    untrained = state_hashes(build("cgan", None))
    assert all(rank0["hashes"][name] != untrained[name] for name in ("generator", "discriminator", "generator_ema"))

    # Every rank called save(<folder>/rank<R>.pt); only rank 0 wrote.
    assert sorted(path.name for path in (tmp_path / "saved").iterdir()) == ["rank0.pt"]
    ckpt = load_checkpoint(tmp_path / "saved" / "rank0.pt")
    assert ckpt["step"] == 4 and ckpt["rng"]["world_size"] == 2 and len(ckpt["rng"]["ranks"]) == 2
    assert not torch.equal(ckpt["rng"]["ranks"][0], ckpt["rng"]["ranks"][1])
    # The keys are the single-process ones: the sampler and a single-process resume read it as before.
    assert set(build("cgan", None).network_state()) <= set(ckpt)
    assert not any(key.startswith("module.") for key in ckpt["generator"])


def test_resumed_run_gives_the_weights_of_an_uninterrupted_one(tmp_path):
    torchrun(2, "--steps", "6", "--report", str(tmp_path / "straight"))
    checkpoint = tmp_path / "shared" / "job.pt"
    torchrun(2, "--steps", "3", "--checkpoint", str(checkpoint), "--checkpoint-every", "3", "--report", str(tmp_path / "first"))
    assert load_checkpoint(checkpoint)["step"] == 3
    torchrun(2, "--steps", "6", "--checkpoint", str(checkpoint), "--checkpoint-every", "3", "--report", str(tmp_path / "second"))

    straight, resumed = reports(tmp_path / "straight"), reports(tmp_path / "second")
    assert [r["resumed_from_step"] for r in resumed] == [3, 3]
    assert [r["hashes"] for r in resumed] == [r["hashes"] for r in straight]
    assert resumed[0]["hashes"] != reports(tmp_path / "first")[0]["hashes"]


def test_torchrun_restart_after_a_rank_dies_continues_from_the_periodic_checkpoint(tmp_path):
    torchrun(2, "--steps", "6", "--report", str(tmp_path / "straight"))
    # Rank 1 of the first attempt exits abruptly at step 4 (after the step-4 checkpoint); torchrun restarts both.
    checkpoint = tmp_path / "shared" / "job.pt"
    torchrun(
        2, "--steps", "6", "--checkpoint", str(checkpoint), "--checkpoint-every", "2", "--die-at-step", "4",
        "--report", str(tmp_path / "restarted"), restarts=1,
    )
    restarted = reports(tmp_path / "restarted")
    assert [r["resumed_from_step"] for r in restarted] == [4, 4]
    assert [r["hashes"] for r in restarted] == [r["hashes"] for r in reports(tmp_path / "straight")]


def test_world_size_one_through_ddp_equals_the_plain_trainer(tmp_path):
    torchrun(1, "--steps", "4", "--report", str(tmp_path / "ddp"))
    [ddp] = reports(tmp_path / "ddp")
    assert ddp["world_size"] == 1 and ddp["global_batch_size"] == 4

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the torchrun process, so the kernels sum in the same order
    try:
        plain = build("cgan", None)
        plain.fit(4, log_every=2)
    finally:
        torch.set_num_threads(threads)
    assert ddp["hashes"] == state_hashes(plain)


@pytest.mark.parametrize("kind", ["tcgan", "cvae", "ddpm"])
def test_other_kinds_train_to_identical_weights_on_every_rank(tmp_path, kind):
    torchrun(2, "--kind", kind, "--steps", "2", "--report", str(tmp_path / "report"))
    rank0, rank1 = reports(tmp_path / "report")
    assert rank0["step"] == rank1["step"] == 2
    assert rank0["losses"] != rank1["losses"]
    assert rank0["hashes"] == rank1["hashes"]


def test_a_trainer_without_ddp_support_refuses_to_distribute():
    from mlcore.distributed import DistributedContext
    from mlcore.training.trainer import Trainer as RestoreTrainer

    from .test_restoration import photos, tiny

    ctx = DistributedContext(rank=0, world_size=2, local_rank=0, device=torch.device("cpu"), backend="gloo")
    restore = RestoreTrainer(tiny(), photos(), batch_size=2, tone_batch=0, seed=0)
    with pytest.raises(ValueError, match="does not support distributed training"):
        restore.distribute(ctx)
    cgan = build("cgan", None)
    cgan.fit(1)
    with pytest.raises(ValueError, match="before it trains"):
        cgan.distribute(ctx)


def test_rank_environment_is_checked():
    from mlcore.distributed import launched_by_torchrun, rank_seed, read_environment

    assert read_environment({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"}) == (1, 2, 1)
    for bad in ({"RANK": "2", "WORLD_SIZE": "2"}, {"RANK": "x", "WORLD_SIZE": "2"}, {"WORLD_SIZE": "2"}):
        with pytest.raises(ValueError):
            read_environment(bad)
    assert not launched_by_torchrun({}) and launched_by_torchrun({"RANK": "0", "WORLD_SIZE": "1"})
    assert rank_seed(7, 0) == 7 and len({rank_seed(7, r) for r in range(8)}) == 8


# --- train_imagegen --nproc ---------------------------------------------------------------------------


def test_train_imagegen_nproc_2_registers_one_version_with_world_size_and_global_batch(
    transactional_db, make_products, settings, tmp_path
):
    from django.db import connection

    from imagegen.models import Job, ModelVersion

    make_products({"dress": 6, "hat": 6})
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("This test runs manage.py in other processes on the test database: set DATABASE_URL to PostgreSQL.")
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    checkpoints = tmp_path / "checkpoints"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "IMAGEGEN_TRAIN_CHECKPOINT_DIR": str(checkpoints),
        "IMAGEGEN_TRAIN_CHECKPOINT_EVERY": "2",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "train_imagegen", "--nproc", "2", "--device", "cpu", "--steps", "4",
         "--batch-size", "8", "--image-size", "64", "--seed", "3"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]

    [version] = ModelVersion.objects.exclude(kind="features")
    assert version.metrics["world_size"] == 2
    assert version.metrics["batch_size"] == 8 and version.metrics["global_batch_size"] == 16
    # Every rank held out the same product of each category: 10 photos trained on, 2 measured against.
    assert version.metrics["steps"] == 4 and version.image_count == 10 and version.metrics["held_out_photos"] == 2
    [job] = Job.objects.filter(kind=Job.Kind.TRAIN)
    assert job.state == Job.State.SUCCEEDED and job.model_version_id == version.pk
    assert " torchrun " in job.worker and job.attempts == 1
    # Rank 0 wrote the periodic checkpoint (steps 2 and 4) and removed it once the version was registered.
    assert checkpoints.is_dir() and not list(checkpoints.iterdir())
    ckpt = load_checkpoint(version.checkpoint.open("rb"))
    assert ckpt["rng"]["world_size"] == 2 and ckpt["step"] == 4
    assert f"Registered {version}" in done.stdout


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args, message",
    [
        (["--nproc", "0"], "at least 1"),
        (["--nproc", "2", "--device", "cuda"], "needs 2 GPUs"),
        (["--nproc", "2", "--device", "cuda:1"], "Give --device cuda"),
        (["--nproc", str((os.cpu_count() or 1) + 1), "--device", "cpu"], "cores"),
        (["--nproc", "2", "--dry-run"], "cannot be combined"),
        (["--prepare", "--queue"], "cannot be combined"),
        (["--job", "999999", "--device", "cpu"], "no training job"),
    ],
)
def test_train_imagegen_refuses_bad_process_options_and_creates_nothing(args, message):
    from imagegen.models import Job

    if "cuda" in args and torch.cuda.device_count() >= 2:
        pytest.skip("this machine has the GPUs")
    with pytest.raises(CommandError, match=message):
        call_command("train_imagegen", *args)
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_a_torchrun_restart_takes_back_only_its_own_job(monkeypatch, make_products):
    from imagegen.models import Job
    from imagegen.services import request_training
    from imagegen.services.distributed_training import take_back_after_restart

    products = make_products({"dress": 2}, with_photos=False)
    mine = request_training([p.pk for p in products], send=False)
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "run-a")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")

    Job.objects.filter(pk=mine.pk).update(state=Job.State.RUNNING, worker="host:1 torchrun run-b")
    assert not take_back_after_restart(mine.pk)  # another run's job
    Job.objects.filter(pk=mine.pk).update(state=Job.State.FAILED, worker="host:1 torchrun run-a", error="Only 2 readable photos")
    assert not take_back_after_restart(mine.pk)  # the job's own failure would only repeat
    Job.objects.filter(pk=mine.pk).update(error="Unexpected error (DistBackendError): Connection closed by peer")
    assert take_back_after_restart(mine.pk)
    mine.refresh_from_db()
    assert mine.state == Job.State.QUEUED and mine.lease_expires_at is None

    Job.objects.filter(pk=mine.pk).update(state=Job.State.RUNNING)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    assert not take_back_after_restart(mine.pk)  # the first attempt claims like any worker


def test_prepare_stores_a_job_that_job_runs_later(make_products):
    from io import StringIO

    from imagegen.models import Job, ModelVersion

    make_products({"dress": 4, "hat": 4})
    out = StringIO()
    call_command("train_imagegen", "--prepare", "--steps", "2", "--batch-size", "8", "--device", "cpu", stdout=out)
    [job] = Job.objects.all()
    assert job.state == Job.State.QUEUED and f"--job {job.pk}" in out.getvalue()
    assert not ModelVersion.objects.exists()

    call_command("train_imagegen", "--job", str(job.pk), stdout=StringIO())
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED
    assert job.model_version.metrics["world_size"] == 1 and job.model_version.metrics["global_batch_size"] == 8


def test_ddp_benchmark_quick_run_writes_its_figures(tmp_path):
    from .test_bench import demo_dataset

    data = demo_dataset(tmp_path / "data")
    done = subprocess.run(
        [sys.executable, "bench/ddp.py", "--quick", "--steps", "1", "--warmup", "0", "--batch-size", "8",
         "--data", str(data), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [result_path] = (tmp_path / "out").glob("*-ddp.json")
    result = json.loads(result_path.read_text())
    runs = result["runs"]
    assert [(r["processes"], r["threads_per_process"], r["global_batch"]) for r in runs] == [(1, 1, 8), (2, 1, 16), (1, 2, 8)]
    assert all(r["images_per_second"] > 0 and r["steps"] == 1 for r in runs)
    efficiency = runs[1]["images_per_second"] / (2 * runs[0]["images_per_second"])
    assert result["scaling_efficiency"] == round(efficiency, 2)
    assert "Scaling efficiency" in result_path.with_suffix(".md").read_text()


@pytest.mark.parametrize(
    "overrides, ids",
    [
        ({}, []),
        ({"IMAGEGEN_TRAIN_CHECKPOINT_EVERY": 0}, ["imagegen.E024"]),
        ({"IMAGEGEN_TRAIN_CHECKPOINT_EVERY": True}, ["imagegen.E024"]),
        ({"IMAGEGEN_TRAIN_CHECKPOINT_DIR": 5}, ["imagegen.E025"]),
        ({"IMAGEGEN_TRAIN_CHECKPOINT_DIR": "relative/folder"}, ["imagegen.E026"]),
        ({"IMAGEGEN_TRAIN_CHECKPOINT_DIR": "/shared/checkpoints"}, []),
    ],
)
def test_checkpoint_settings_are_checked(settings, overrides, ids):
    from imagegen.checks import check_training_checkpoints

    for name, value in overrides.items():
        setattr(settings, name, value)
    assert [error.id for error in check_training_checkpoints()] == ids


def test_a_training_job_continues_from_its_periodic_checkpoint(make_products, settings, tmp_path):
    from imagegen.services.products import product_photos
    from imagegen.services.training import train, training_parameters

    settings.IMAGEGEN_TRAIN_CHECKPOINT_EVERY = 2
    products = make_products({"dress": 4, "hat": 4})
    photos = list(product_photos([p.pk for p in products]))
    params = training_parameters(steps=4, batch_size=8, image_size=64, seed=5, device="cpu")
    straight, _, _ = train(params, photos)

    checkpoint = tmp_path / "job.pt"
    train({**params, "steps": 2}, photos, checkpoint=checkpoint)  # an attempt that stopped at step 2
    continued, summary, _ = train(params, photos, checkpoint=checkpoint)
    assert summary["steps_done"] == 2 and continued.step == 4
    assert state_hashes(continued) == state_hashes(straight)

    # A checkpoint of another batch size (from before an out-of-memory retry) is not continued.
    fresh, summary, _ = train({**params, "batch_size": 16, "steps": 2}, photos, checkpoint=checkpoint)
    assert summary["steps_done"] == 2 and fresh.batch_size == 16
