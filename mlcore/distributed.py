"""PyTorch distributed for the trainers: torchrun's environment, the process group, and the few collectives
training needs (stop decisions, every rank's RNG state, buffer sync).

A process that torchrun did not start has no ``WORLD_SIZE`` and never touches ``torch.distributed``:
single-process training is exactly what it was before distributed training existed.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass

import torch
import torch.distributed as dist

# Added to the trainer seed once per rank (rank 0 adds nothing), so every rank draws its own batches and
# rank 0 draws what a single-process run would. Odd and large: streams of nearby seeds stay apart.
RANK_SEED_STRIDE = 1_000_003
# How long a collective waits for a lagging rank (a rank loading photos, or one that died) before it fails.
DEFAULT_TIMEOUT_MINUTES = 30


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a distributed run."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, the database and the logs."""
        return self.rank == 0


_context: DistributedContext | None = None


def launched_by_torchrun(environ: dict[str, str] | None = None) -> bool:
    """Whether this process is one of torchrun's workers (torchrun sets ``WORLD_SIZE`` and ``RANK``)."""
    env = os.environ if environ is None else environ
    return "WORLD_SIZE" in env and "RANK" in env


def read_environment(environ: dict[str, str] | None = None) -> tuple[int, int, int]:
    """(rank, world_size, local_rank) from torchrun's environment; ``ValueError`` when they make no sense."""
    env = os.environ if environ is None else environ
    try:
        rank, world_size = int(env["RANK"]), int(env["WORLD_SIZE"])
        local_rank = int(env.get("LOCAL_RANK", rank))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers set by torchrun: {exc}") from exc
    if world_size < 1 or not 0 <= rank < world_size or local_rank < 0:
        raise ValueError(f"inconsistent torchrun environment: RANK={rank} WORLD_SIZE={world_size} LOCAL_RANK={local_rank}")
    return rank, world_size, local_rank


def initialise(device: str | torch.device = "cpu", *, timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES) -> DistributedContext:
    """Join torchrun's process group: gloo on the CPU, nccl on CUDA with this process on ``cuda:LOCAL_RANK``.

    ``device`` is the run's device kind ("cpu" or "cuda"); the CUDA index always comes from LOCAL_RANK,
    so every process of a machine has its own GPU. Calling it again returns the same context."""
    global _context
    if _context is not None:
        return _context
    rank, world_size, local_rank = read_environment()
    kind = device.type if isinstance(device, torch.device) else str(device).split(":")[0].strip().lower()
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but CUDA is not available")
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                "start at most that many processes per machine"
            )
        placed, backend = torch.device("cuda", local_rank), "nccl"
        torch.cuda.set_device(placed)
    elif kind == "cpu":
        placed, backend = torch.device("cpu"), "gloo"
    else:
        raise ValueError(f"distributed training runs on 'cpu' or 'cuda', not {device!r}")
    timeout = datetime.timedelta(minutes=timeout_minutes)
    store = _attempt_store(world_size, timeout)
    dist.init_process_group(
        backend=backend,
        rank=rank,
        world_size=world_size,
        timeout=timeout,
        **({"store": store} if store is not None else {}),
        **({"device_id": placed} if backend == "nccl" else {}),
    )
    _context = DistributedContext(rank, world_size, local_rank, placed, backend)
    return _context


def _attempt_store(world_size: int, timeout: datetime.timedelta) -> dist.Store | None:
    """torchrun's own key-value store, under a prefix of this restart attempt; None outside torchrun's agent.

    The agent keeps its store across ``--max-restarts`` restarts, and the process group's keys of the
    attempt that died (its ranks' addresses) would otherwise be read by the next one, which then hangs
    or fails connecting to processes that no longer exist."""
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    agent = dist.TCPStore(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, is_master=False, timeout=timeout
    )
    return dist.PrefixStore(f"imagegen-attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", agent)


def active() -> DistributedContext | None:
    """The context ``initialise`` made in this process, or None in a single-process run."""
    return _context


def teardown() -> None:
    """Leave the process group (safe to call when there is none)."""
    global _context
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _context = None


def rank_seed(seed: int, rank: int) -> int:
    """The seed of ``rank``'s random stream: ``seed`` itself on rank 0."""
    return (int(seed) + rank * RANK_SEED_STRIDE) % (2**63)


def barrier(ctx: DistributedContext) -> None:
    """Wait until every rank gets here."""
    if ctx.world_size == 1:
        return
    if ctx.backend == "nccl":
        dist.barrier(device_ids=[ctx.local_rank])
    else:
        dist.barrier()


def any_rank(ctx: DistributedContext, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one (a stop decision every rank must share)."""
    if ctx.world_size == 1:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=ctx.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def broadcast_object(ctx: DistributedContext, obj: object = None) -> object:
    """Rank 0's ``obj`` (picklable plain data) on every rank."""
    if ctx.world_size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=ctx.device if ctx.backend == "nccl" else None)
    return box[0]


def gather_rng_states(ctx: DistributedContext, state: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's CPU generator state (uint8 tensor), in rank order, on every rank."""
    if ctx.world_size == 1:
        return [state.clone()]
    local = state.to(ctx.device)
    states = [torch.empty_like(local) for _ in range(ctx.world_size)]
    dist.all_gather(states, local)
    return [s.cpu() for s in states]


def sync_buffers(ctx: DistributedContext, modules: Iterable[torch.nn.Module]) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) into every rank's modules.

    DDP broadcasts buffers before each forward, so only the last step's local statistics differ; they never
    feed a later step, and after this every rank holds rank 0's model bit for bit."""
    if ctx.world_size == 1:
        return
    for module in modules:
        for buffer in module.buffers():
            dist.broadcast(buffer.data, src=0)
