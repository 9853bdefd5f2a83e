"""Training one job with several processes: PyTorch DistributedDataParallel under torchrun.

``train_imagegen --nproc N`` stores the job and starts ``torchrun --standalone --nproc-per-node N`` on
``train_imagegen --job ID``; on several machines the same ``--job ID`` command runs under torchrun on each
of them. In every process ``run_rank`` joins the process group. Rank 0 claims the job (``jobcore.execute``):
it reports progress, and it alone writes checkpoints and registers the model version; when it starts
training it hands the job's parameters to the other ranks, which read the same photos (a database read)
and train beside it without writing anything. When rank 0 does not run the job (already claimed, done,
cancelled) it says so and every rank exits.

Restarts: with ``IMAGEGEN_TRAIN_CHECKPOINT_DIR`` set, training writes a checkpoint every
``IMAGEGEN_TRAIN_CHECKPOINT_EVERY`` steps and picks it up when the job runs again. A run that torchrun
restarts (``--max-restarts``) takes its own job back, so it continues from that checkpoint.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys

from django.db.models import Q

from ..backends import get_backend
from ..jobcore.errors import UNEXPECTED_PREFIX, JobError
from ..jobcore.execution import execute
from ..jobcore.leases import torchrun_marker
from ..jobcore.progress import ProgressCallback
from ..models import Job
from .products import product_photos
from .training import announced, checkpoint_path, train

logger = logging.getLogger(__name__)


class DistributedSetupError(ValueError):
    """The requested processes cannot run here (too many, or more GPUs than the machine has)."""


def launched_by_torchrun() -> bool:
    """Whether this process is one of torchrun's (it sets RANK and WORLD_SIZE)."""
    return get_backend().distributed().launched_by_torchrun()


def is_main_process() -> bool:
    """Rank 0 of a torchrun run, or any process torchrun did not start."""
    return os.environ.get("RANK", "0") == "0"


def check_processes(nproc: int, device: str) -> None:
    """``DistributedSetupError`` unless ``nproc`` processes can train on ``device`` on this machine."""
    problem = get_backend().check_processes(nproc, device)
    if problem is not None:
        raise DistributedSetupError(problem)


def torchrun_command(job_id: int, nproc: int, *, device: str) -> list[str]:
    """The command that trains job ``job_id`` with ``nproc`` local processes (``python -m django`` with
    this process's settings module, so it works wherever the project keeps its manage.py)."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
        "-m", "django", "train_imagegen", "--job", str(job_id), "--device", device,
    ]


def launch(job_id: int, nproc: int, *, device: str) -> int:
    """Run the job under torchrun with ``nproc`` local processes; returns torchrun's exit status.

    Each process gets one torch thread per core it may use, so N processes do not fight over the cores."""
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise DistributedSetupError("DJANGO_SETTINGS_MODULE must be set for the training processes.")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(max(1, cores // nproc))),
        # The processes import the project exactly as this one does.
        "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path if p),
    }
    logger.info("job %s: training with %d processes under torchrun", job_id, nproc)
    return subprocess.run(torchrun_command(job_id, nproc, device=device), env=env, check=False).returncode


def run_rank(job_id: int, *, device: str, on_progress: ProgressCallback | None = None) -> Job | None:
    """This process's part of training job ``job_id`` (under torchrun): rank 0 runs the job, the others
    follow it. Returns the job on rank 0 (None when there was nothing to claim), None on the others."""
    distributed = get_backend().distributed()
    ctx = distributed.initialise(device)
    trained = False
    try:
        if not ctx.is_main:
            trained = _follow(job_id)
            return None
        take_back_after_restart(job_id)
        job = execute(job_id, on_progress=on_progress)
        trained = bool(announced.get(job_id))
        if not trained:
            # The job did not reach training (not claimed, or it failed first): release the other ranks.
            distributed.broadcast_object(ctx, None)
        return job
    finally:
        if trained:
            # Every rank leaves the process group together, once rank 0 has registered the version. A rank
            # that tore it down and exited while rank 0 still held it once aborted in C++ ("terminate called
            # without an active exception"), and torchrun then killed rank 0 half-way through registering.
            distributed.barrier(ctx)
        distributed.teardown()


def _follow(job_id: int) -> bool:
    """A rank above 0: wait for rank 0's word, then train the same job without writing anything. Returns
    whether rank 0 ran the job (and so waits for this rank at the end)."""
    distributed = get_backend().distributed()
    ctx = distributed.active()
    word = distributed.broadcast_object(ctx, None)
    if word is None:
        logger.info("job %s: rank 0 did not run it; rank %d exits", job_id, ctx.rank)
        return False
    if word["job_id"] != job_id:
        raise RuntimeError(f"rank 0 runs job {word['job_id']} but rank {ctx.rank} was started for job {job_id}")
    job = Job.objects.get(pk=job_id)
    params = word["parameters"]
    try:
        train(params, list(product_photos(params["product_ids"])), checkpoint=checkpoint_path(job))
    except JobError as exc:
        # Rank 0 meets the same problem with the same photos and puts it on the job.
        logger.info("job %s: rank %d stops: %s", job_id, ctx.rank, exc)
    return True


def take_back_after_restart(job_id: int) -> bool:
    """After torchrun restarted the processes (``TORCHELASTIC_RESTART_COUNT`` > 0), queue the job again when
    this same run was training it (running, or failed when a rank died), so rank 0 claims it and training
    continues from its checkpoint. Attempts still count towards ``IMAGEGEN_JOB_MAX_ATTEMPTS``."""
    marker = torchrun_marker()
    if not marker or int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) == 0:
        return False
    # A failure the job reported itself (too few photos, ...) would only fail again; an unexpected one (a
    # rank that died took the collectives down with it) is what a restart is for.
    mine = Job.objects.filter(pk=job_id, kind=Job.Kind.TRAIN, worker__endswith=marker)
    taken = mine.filter(
        Q(state=Job.State.RUNNING) | Q(state=Job.State.FAILED, error__startswith=UNEXPECTED_PREFIX)
    ).update(state=Job.State.QUEUED, lease_expires_at=None, finished_at=None, message="Restarted by torchrun")
    if taken:
        logger.warning("job %s: torchrun restarted its processes; continuing from the last checkpoint", job_id)
    return bool(taken)
