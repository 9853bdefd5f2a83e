"""The one training loop, composed with the objective of the config's kind (as lucidrains' ``Trainer``
composes a diffusion model): the trainer owns the steps (step and wall-clock budgets, loss logging, the
progress callback), the EMA copy, the random stream, checkpoints and distributed training; the objective
owns its networks, loss, optimizers' parameter groups, batches and samples (``objective.Objective``).

Every random draw after construction (batches, noise, augmentation) comes from one CPU ``torch.Generator``
whose state is checkpointed, so a resumed run continues exactly as an uninterrupted one would, and two
trainers with the same seed and data end with identical weights on the CPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import distributed, registry
from ..checkpoint import CheckpointSource, CheckpointTarget, load_checkpoint, save_checkpoint
from ..devices import resolve_device
from ..ema import ema_decay_at, make_ema, update_ema
from .objective import Objective

Callback = Callable[[int, int, dict[str, float]], bool | None]
GRID_COLUMNS = 8


def check_options(batch_size: int, ema_decay: float) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")


def objective_class(config: Any) -> type[Objective]:
    """The objective of ``config``'s kind; ``ValueError`` for anything but a registered kind's config."""
    kind = getattr(config, "kind", None)
    if not isinstance(kind, str) or kind not in registry.MODEL_KINDS:
        names = ", ".join(dict.fromkeys(k.config.split(":")[1] for k in registry.MODEL_KINDS.values()))
        raise ValueError(f"config must be the config of a model kind ({names}), got {type(config).__name__}")
    return registry.load(kind, "objective")


class Trainer:
    """Trains the model ``config`` describes on ``data`` (what the kind's objective takes: images and labels
    for the generators, photos, cut-outs ...). Hyperparameters are keyword-only; ``batch_size``, ``betas`` and
    ``ema_decay`` default to the kind's, the rest (``options``: ``lr``, ...) go to the objective.

    The networks are also attributes named by their checkpoint keys (``trainer.generator_ema``,
    ``trainer.model``)."""

    def __init__(
        self,
        config: Any,
        *data: Any,
        batch_size: int | None = None,
        betas: Sequence[float] | None = None,
        ema_decay: float | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        **options: Any,
    ) -> None:
        cls = objective_class(config)
        batch_size = cls.DEFAULTS["batch_size"] if batch_size is None else batch_size
        ema_decay = cls.DEFAULTS["ema_decay"] if ema_decay is None else ema_decay
        betas = cls.DEFAULTS["betas"] if betas is None else betas
        check_options(batch_size, ema_decay)
        self.config = config
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        # Adam refuses a mix of int and float betas, and checkpoints store a list.
        self.betas = (float(betas[0]), float(betas[1]))
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)
        self.objective = cls(config, *data, device=self.device, seed=self.seed, batch_size=self.batch_size, **options)
        self.ema = make_ema(self.objective.networks[cls.EMA])
        self.networks = {f"{cls.EMA}_ema": self.ema, **self.objective.networks}
        self._parameters, self.optimizers = {}, {}
        for name, (parameters, lr) in self.objective.param_groups().items():
            self._parameters[name] = list(parameters)
            self.optimizers[name] = torch.optim.Adam(self._parameters[name], lr=lr, betas=self.betas)
        self.rng = torch.Generator(device="cpu").manual_seed(self.seed)
        self.step = 0
        self.history: dict[str, list[float]] = {key: [] for key in ("step", *self.objective.loss_keys)}
        # The distributed run this trainer is one rank of; None: a single process.
        self.dist: distributed.DistributedContext | None = None
        self._ema_ready_at: int | None = None

    def __getattr__(self, name: str) -> Any:
        networks = self.__dict__.get("networks", {})
        if name in networks:
            return networks[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def world_size(self) -> int:
        return self.dist.world_size if self.dist is not None else 1

    def hyperparameters(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this trainer (plain python values)."""
        return {
            "batch_size": self.batch_size,
            **self.objective.options(),
            "betas": list(self.betas),
            "ema_decay": self.ema_decay,
            "seed": self.seed,
        }

    # --- one step ---------------------------------------------------------------------------------------

    def optimise(self, name: str, loss: torch.Tensor, clip_norm: float | None = None) -> None:
        """One step of optimizer ``name`` on ``loss``, its gradients clipped to ``clip_norm`` when given."""
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self._parameters[name], clip_norm)
        optimizer.step()

    def train_step(self, **given: Any) -> dict[str, torch.Tensor]:
        """One training step (the objective's optimiser steps, then the EMA update); the detached loss terms.

        ``given`` goes to the objective's ``train_step`` (e.g. ``batch=``: a fixed batch instead of a drawn
        one, for the objectives whose batches are drawn apart from their loss)."""
        terms = self.objective.train_step(self.rng, self.step, self.optimise, **given)
        update_ema(self.ema, self.objective.networks[self.objective.EMA], ema_decay_at(self.step, self.ema_decay))
        self.step += 1
        return {key: value.detach() for key, value in terms.items()}

    def ema_for_sampling(self) -> torch.nn.Module:
        """The EMA copy, made ready to sample by the objective (once per step: its weights only change with a
        step, and saving a version asks twice, for the sample grid and for the checkpoint)."""
        if self._ema_ready_at != self.step:
            self._ema_ready_at = self.step
            self.objective.calibrate_ema(self.ema)
        return self.ema

    def sample_grid(self, columns: int = GRID_COLUMNS) -> torch.Tensor:
        """EMA samples in [-1, 1] on the CPU, one row of ``columns`` per class, from fixed (seeded) noise so grids
        of successive steps are comparable."""
        return self.objective.sample_grid(self.ema_for_sampling(), columns)

    # --- the loop ---------------------------------------------------------------------------------------

    def distribute(self, ctx: distributed.DistributedContext) -> None:
        """Train as rank ``ctx.rank`` of a DistributedDataParallel run.

        Call it on a fresh trainer, or right after ``resume``. The trained networks are wrapped in
        ``DistributedDataParallel`` (gradients averaged over the ranks; checkpoint keys unchanged, they come
        from the raw networks); each rank draws its own batches of ``batch_size`` from its own stream, rank
        0's being the single-process one, so the global batch is ``world_size * batch_size``. A resumed
        trainer takes its rank's stream from the checkpoint (a rank the checkpoint does not know starts a
        fresh one: resuming with another world size continues, but not as the old world would have)."""
        if not self.objective.DISTRIBUTES:
            raise ValueError(f"the {self.config.kind!r} trainer does not support distributed training")
        if self.dist is not None:
            raise ValueError("this trainer is already distributed")
        if ctx.device != self.device:
            raise ValueError(f"the trainer is on {self.device} but this rank's device is {ctx.device}")
        saved = getattr(self, "_resumed_rng", None)
        if saved is None:
            if self.step != 0:
                raise ValueError("distribute a trainer before it trains (or right after resume)")
            self.rng = torch.Generator(device="cpu").manual_seed(distributed.rank_seed(self.seed, ctx.rank))
        elif ctx.rank < len(saved.get("ranks", [])):
            self.rng.set_state(saved["ranks"][ctx.rank])
        elif ctx.rank > 0:
            self.rng = torch.Generator(device="cpu").manual_seed(distributed.rank_seed(self.seed, ctx.rank) + self.step)
        self.dist = ctx
        device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        self.objective.wrap(lambda module: torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids))

    def _record(self, sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
        """Append the mean of each term since the last record to ``history``."""
        means = {key: float(total) / count for key, total in sums.items()}
        self.history["step"].append(self.step)
        for key, value in means.items():
            self.history.setdefault(key, []).append(value)
        return means

    def fit(
        self,
        steps: int,
        *,
        max_seconds: float | None = None,
        callback: Callback | None = None,
        log_every: int = 10,
        checkpoint_every: int | None = None,
        checkpoint_path: str | os.PathLike | None = None,
    ) -> dict[str, Any]:
        """Train ``steps`` more steps, or until ``max_seconds`` of wall clock would be exceeded.

        ``callback(step, total_steps, losses)`` is called every ``log_every`` steps (counted globally, so
        resumed runs log at the same steps) and after the last step; returning ``False`` stops training.
        ``losses`` are means over the steps since the previous call. With ``checkpoint_every`` and
        ``checkpoint_path``, a checkpoint is written there (atomically) every that many global steps.
        Distributed, every rank stops at the same step (the first rank whose clock or callback says stop
        decides). Returns a summary with ``steps_done``, ``seconds``, ``images_per_second`` (of all ranks
        together), ``stopped`` ("completed" | "time" | "callback"), ``step``, ``world_size``,
        ``global_batch_size``, ``losses`` and the final losses flattened.
        """
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        if log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {log_every}")
        if (checkpoint_every is None) != (checkpoint_path is None):
            raise ValueError("give checkpoint_every and checkpoint_path together")
        if checkpoint_every is not None and checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be >= 1, got {checkpoint_every}")
        target = self.step + int(steps)
        start = time.perf_counter()
        steps_done, stopped = 0, "completed"
        sums: dict[str, torch.Tensor] = {}
        count = 0
        last_losses: dict[str, float] = {}
        for network in self.objective.networks.values():
            network.train()
        while self.step < target:
            elapsed = time.perf_counter() - start
            # Stop before a step that would likely overrun the budget, not after it.
            mean_step = elapsed / steps_done if steps_done else 0.0
            if max_seconds is not None and self._agree(elapsed + mean_step > max_seconds):
                stopped = "time"
                break
            for key, value in self.train_step().items():
                sums[key] = sums[key] + value if key in sums else value
            count += 1
            steps_done += 1
            if checkpoint_every is not None and self.step % checkpoint_every == 0:
                self.save_atomically(checkpoint_path)
            if self.step % log_every == 0 or self.step == target:
                last_losses = self._record(sums, count)
                sums, count = {}, 0
                wants_stop = callback is not None and callback(self.step, target, dict(last_losses)) is False
                if self._agree(wants_stop):
                    stopped = "callback"
                    break
        if count:
            # Stopped by the clock between log points: record the tail too.
            last_losses = self._record(sums, count)
            if callback is not None:
                callback(self.step, target, dict(last_losses))
        seconds = time.perf_counter() - start
        if self.dist is not None:
            distributed.sync_buffers(self.dist, [*self.objective.networks.values(), self.ema])
            # Gathered now, while every rank is here: rank 0 alone saves the model version later.
            self._gathered_rng = (self.step, distributed.gather_rng_states(self.dist, self.rng.get_state()))
        global_batch = self.batch_size * self.world_size
        return {
            "steps_done": steps_done,
            "step": self.step,
            "seconds": seconds,
            "images_per_second": steps_done * global_batch / seconds if seconds > 0 else 0.0,
            "world_size": self.world_size,
            "global_batch_size": global_batch,
            "stopped": stopped,
            "losses": last_losses,
            **last_losses,
        }

    def _agree(self, flag: bool) -> bool:
        return flag if self.dist is None else distributed.any_rank(self.dist, flag)

    # --- checkpoints ------------------------------------------------------------------------------------

    def network_state(self) -> dict[str, Any]:
        """The EMA copy (ready to sample), the networks and the optimizers, as state_dicts by checkpoint key."""
        self.ema_for_sampling()
        return {
            **{name: network.state_dict() for name, network in self.networks.items()},
            **{name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
        }

    def load_network_state(self, ckpt: dict[str, Any]) -> None:
        for name, network in self.networks.items():
            network.load_state_dict(ckpt[name])
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(ckpt[name])
        self._ema_ready_at = None

    def _rank_rng_states(self) -> list[torch.Tensor]:
        """Every rank's generator state now: gathered at the end of ``fit``, or now (a collective)."""
        step, states = getattr(self, "_gathered_rng", (None, None))
        if step == self.step:
            return states
        return distributed.gather_rng_states(self.dist, self.rng.get_state())

    def state_payload(self) -> dict[str, Any]:
        """Everything ``resume`` and the sampler need, as plain data and state_dicts.

        Distributed, it also holds every rank's generator state (``rng["ranks"]``) and the world size."""
        rng: dict[str, Any] = {"seed": self.seed, "state": self.rng.get_state()}
        if self.dist is not None:
            ranks = self._rank_rng_states()
            rng.update(state=ranks[0], ranks=ranks, world_size=self.world_size)
        return {
            "kind": self.config.kind,
            "config": self.config.to_dict(),
            **self.network_state(),
            "step": self.step,
            "history": {key: list(values) for key, values in self.history.items()},
            "hyperparameters": self.hyperparameters(),
            "rng": rng,
        }

    def save(self, target: CheckpointTarget) -> None:
        """Write a checkpoint (path or binary file object) that ``resume`` and the sampler read.

        Distributed, every rank must call it at the same step (it gathers the ranks' generator states,
        unless ``fit`` just did) and only rank 0 writes."""
        payload = self.state_payload()
        if self.dist is None or self.dist.is_main:
            save_checkpoint(payload, target)

    def save_atomically(self, path: str | os.PathLike) -> None:
        """``save`` to ``path`` through a temporary file beside it, so a reader (a restarted run) finds the
        previous checkpoint or the new one, never half of one."""
        path = Path(path)
        partial = path.with_name(f".{path.name}.partial")
        main = self.dist is None or self.dist.is_main
        if main:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.save(partial)
        if main:
            os.replace(partial, path)

    @staticmethod
    def config_from_dict(data: dict[str, Any]) -> Any:
        """The config a checkpoint (or a stored model version) carries, rebuilt by its kind's config class."""
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind not in registry.MODEL_KINDS:
            raise ValueError(f"config names no model kind ({kind!r}); known: {', '.join(registry.MODEL_KINDS)}")
        return registry.load(kind, "config").from_dict(data)

    @classmethod
    def resume(
        cls, source: CheckpointSource, *data: Any, device: str | torch.device = "cpu", kinds: Sequence[str] | None = None,
    ) -> Trainer:
        """Rebuild a trainer from ``save``'s checkpoint to continue training on ``data``; ``kinds`` (default:
        every registered kind) are the kinds the caller expects, others raise ``ValueError``."""
        ckpt = load_checkpoint(source, map_location="cpu")
        expected = tuple(registry.MODEL_KINDS if kinds is None else kinds)
        if ckpt["kind"] not in expected:
            raise ValueError(f"checkpoint holds a {ckpt['kind']!r} model, not one of {expected}")
        missing = [key for key in ("step", "history", "hyperparameters", "rng") if key not in ckpt]
        if missing:
            raise ValueError(f"checkpoint cannot resume training, it lacks {missing}")
        hyper = dict(ckpt["hyperparameters"])
        hyper["betas"] = tuple(hyper["betas"])
        trainer = cls(cls.config_from_dict(ckpt["config"]), *data, device=device, **hyper)
        trainer.load_network_state(ckpt)
        trainer.rng.set_state(ckpt["rng"]["state"])
        # For ``distribute``: each rank continues its own stream.
        trainer._resumed_rng = ckpt["rng"]
        trainer.step = int(ckpt["step"])
        trainer.history = {key: list(values) for key, values in ckpt["history"].items()}
        return trainer
