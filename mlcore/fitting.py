"""What every trainer shares: input checks, seeded network construction, the step loop (step and
wall-clock budgets, loss logging, callbacks), saving/resuming checkpoints, and (``EMAModelLoop``) the
one-network-with-an-EMA-copy setup of the VAE and diffusion kinds."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import distributed
from .checkpoint import CheckpointSource, CheckpointTarget, load_checkpoint, save_checkpoint
from .devices import resolve_device
from .ema import ema_decay_at, make_ema, update_ema

Callback = Callable[[int, int, dict[str, float]], bool | None]


def check_dataset(config: Any, images: torch.Tensor, labels: torch.Tensor) -> None:
    """``ValueError`` unless ``images`` are uint8 N x 3 x S x S and ``labels`` the config's condition ids for them."""
    size = config.image_size
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (3, size, size):
        raise ValueError(
            f"images must be uint8 N x 3 x {size} x {size}, got {images.dtype} {tuple(images.shape)}"
        )
    if len(images) == 0:
        raise ValueError("cannot train on an empty dataset")
    config.check_condition_ids(labels, len(images))


def check_options(batch_size: int, ema_decay: float) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")


def unwrapped(module: torch.nn.Module) -> torch.nn.Module:
    """The single-process "wrapper" of ``FitLoop._wrap_networks``: the network itself."""
    return module


def build_seeded(build: Callable[[], Any], seed: int) -> Any:
    """``build()`` with the global RNG seeded by ``seed`` on the CPU, leaving the caller's random state alone.

    CPU initialisation means the same seed gives the same weights on every device."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


class FitLoop:
    """Base of the trainers.

    A subclass is built as ``cls(config, images, labels, *, device, **hyperparameters())`` and sets
    ``config``, ``seed``, ``rng`` (a CPU torch.Generator), ``step``, ``batch_size`` and ``history`` (a dict of
    lists with a "step" key). It implements ``_train_step() -> {term: tensor}``, ``_train_mode()``,
    ``hyperparameters()``, ``network_state() -> {name: state_dict}`` and ``load_network_state(ckpt)``,
    and names the checkpoint kinds it resumes (``RESUMES``) and how to rebuild its config.
    """

    RESUMES: tuple[str, ...] = ()
    # Whether ``_wrap_networks`` routes every trained forward through its wrapper (see ``distribute``).
    DISTRIBUTES = False
    # The distributed run this trainer is one rank of; None: a single process, as it always was.
    dist: distributed.DistributedContext | None = None
    config: Any
    seed: int
    rng: torch.Generator
    step: int
    batch_size: int
    history: dict[str, list[float]]

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError

    def network_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_network_state(self, ckpt: dict[str, Any]) -> None:
        raise NotImplementedError

    def _start_loop(self, history_keys: tuple[str, ...]) -> None:
        """Fresh loop state: the CPU generator (seeded by ``self.seed``) every random draw comes from,
        step 0, empty history."""
        self.rng = torch.Generator(device="cpu").manual_seed(self.seed)
        self.step = 0
        self.history = {key: [] for key in history_keys}

    def _train_step(self) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _train_mode(self) -> None:
        raise NotImplementedError

    def _wrap_networks(self, wrap: Callable[[torch.nn.Module], torch.nn.Module]) -> None:
        """Keep ``wrap(network)`` of each trained network for the forwards whose backward updates it; the
        raw networks stay for state_dicts, the EMA copy and forwards that must not synchronise."""
        raise NotImplementedError

    def _synced_modules(self) -> list[torch.nn.Module]:
        """The modules whose buffers rank 0 hands to the other ranks at the end of ``fit``."""
        return []

    @property
    def world_size(self) -> int:
        return self.dist.world_size if self.dist is not None else 1

    def distribute(self, ctx: distributed.DistributedContext) -> None:
        """Train as rank ``ctx.rank`` of a DistributedDataParallel run.

        Call it on a fresh trainer, or right after ``resume``. The trained networks are wrapped in
        ``DistributedDataParallel`` (gradients averaged over the ranks; checkpoint keys unchanged, they come
        from the raw networks); each rank draws its own batches of ``batch_size`` from its own stream, rank
        0's being the single-process one, so the global batch is ``world_size * batch_size``. A resumed
        trainer takes its rank's stream from the checkpoint (a rank the checkpoint does not know starts a
        fresh one: resuming with another world size continues, but not as the old world would have)."""
        if not self.DISTRIBUTES:
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

        def wrap(module: torch.nn.Module) -> torch.nn.Module:
            return torch.nn.parallel.DistributedDataParallel(module, device_ids=device_ids)

        self._wrap_networks(wrap)

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
        self._train_mode()
        while self.step < target:
            elapsed = time.perf_counter() - start
            # Stop before a step that would likely overrun the budget, not after it.
            mean_step = elapsed / steps_done if steps_done else 0.0
            if max_seconds is not None and self._agree(elapsed + mean_step > max_seconds):
                stopped = "time"
                break
            for key, value in self._train_step().items():
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
            distributed.sync_buffers(self.dist, self._synced_modules())
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

    @classmethod
    def resume(
        cls,
        source: CheckpointSource,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        device: str | torch.device = "cpu",
    ) -> FitLoop:
        """Rebuild a trainer from ``save``'s checkpoint to continue training on ``images``."""
        ckpt = load_checkpoint(source, map_location="cpu")
        if ckpt["kind"] not in cls.RESUMES:
            raise ValueError(f"checkpoint holds a {ckpt['kind']!r} model, not one of {cls.RESUMES}")
        missing = [key for key in ("step", "history", "hyperparameters", "rng") if key not in ckpt]
        if missing:
            raise ValueError(f"checkpoint cannot resume training, it lacks {missing}")
        hyper = dict(ckpt["hyperparameters"])
        hyper["betas"] = tuple(hyper["betas"])
        trainer = cls(cls.config_from_dict(ckpt["config"]), images, labels, device=device, **hyper)
        trainer.load_network_state(ckpt)
        trainer.rng.set_state(ckpt["rng"]["state"])
        # For ``distribute``: each rank continues its own stream.
        trainer._resumed_rng = ckpt["rng"]
        trainer.step = int(ckpt["step"])
        trainer.history = {key: list(values) for key, values in ckpt["history"].items()}
        return trainer


class EMAModelLoop(FitLoop):
    """Base of trainers of one network with Adam and an EMA copy that samples ("vae", "cvae", "ddpm").

    A subclass names ``CONFIG`` (its config class) and ``HISTORY_KEYS``, passes its network class to
    ``__init__`` and implements ``_train_step``; checkpoints hold "model", "model_ema" and "optimizer".
    """

    CONFIG: type
    HISTORY_KEYS: tuple[str, ...]

    def __init__(
        self,
        config: Any,
        images: torch.Tensor,
        labels: torch.Tensor,
        network: Callable[[Any], torch.nn.Module],
        *,
        batch_size: int,
        lr: float,
        betas: tuple[float, float],
        ema_decay: float,
        seed: int,
        device: str | torch.device,
    ) -> None:
        self._check_config(config)
        check_dataset(config, images, labels)
        self._set_up(
            config, network, batch_size=batch_size, lr=lr, betas=betas, ema_decay=ema_decay, seed=seed, device=device
        )
        # The dataset is small (hundreds of photos), so it lives on the device as uint8.
        self.images = images.to(self.device)
        self.labels = labels.to(self.device)

    def _check_config(self, config: Any) -> None:
        if not isinstance(config, self.CONFIG):
            raise ValueError(f"config must be a {self.CONFIG.__name__}, got {type(config).__name__}")

    def _set_up(
        self,
        config: Any,
        network: Callable[[Any], torch.nn.Module],
        *,
        batch_size: int,
        lr: float,
        betas: tuple[float, float],
        ema_decay: float,
        seed: int,
        device: str | torch.device,
        history_keys: tuple[str, ...] | None = None,
        memory_format: torch.memory_format = torch.preserve_format,
    ) -> None:
        """What every one-network trainer sets up: options, the seeded network and its EMA copy, Adam, and a
        fresh loop. Trainers whose data are not the generators' labelled squares (photos of any size,
        cut-outs) check their own data and call this instead of ``EMAModelLoop.__init__``."""
        check_options(batch_size, ema_decay)
        self.config = config
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        # Adam refuses a mix of int and float betas, and checkpoints store a list.
        self.betas = (float(betas[0]), float(betas[1]))
        self.ema_decay = float(ema_decay)
        self.seed = int(seed)
        self.model = build_seeded(lambda: network(config), self.seed).to(self.device, memory_format=memory_format).train()
        self.model_ema = make_ema(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.lr, betas=self.betas)
        self._start_loop(history_keys or self.HISTORY_KEYS)
        self._wrap_networks(unwrapped)

    def _wrap_networks(self, wrap: Callable[[torch.nn.Module], torch.nn.Module]) -> None:
        # A trainer that sets DISTRIBUTES runs its training forward through ``self.model_train``.
        self.model_train = wrap(self.model)

    def _synced_modules(self) -> list[torch.nn.Module]:
        return [self.model, self.model_ema]

    def hyperparameters(self) -> dict[str, Any]:
        """The keyword arguments that rebuild this trainer (plain python values)."""
        return {
            "batch_size": self.batch_size,
            "lr": self.lr,
            "betas": list(self.betas),
            "ema_decay": self.ema_decay,
            "seed": self.seed,
        }

    def _optimise(self, terms: dict[str, torch.Tensor], *, clip_norm: float | None = None) -> dict[str, torch.Tensor]:
        """One Adam step on ``terms["loss"]`` (gradients clipped to ``clip_norm`` when given), then the EMA
        update; the detached terms for the log."""
        self.optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        if clip_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip_norm)
        self.optimizer.step()
        update_ema(self.model_ema, self.model, ema_decay_at(self.step, self.ema_decay))
        self.step += 1
        return {key: value.detach() for key, value in terms.items()}

    def _train_mode(self) -> None:
        self.model.train()

    @classmethod
    def config_from_dict(cls, data: dict[str, Any]) -> Any:
        return cls.CONFIG.from_dict(data)

    def network_state(self) -> dict[str, Any]:
        return {
            "model_ema": self.model_ema.state_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
        }

    def load_network_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.model_ema.load_state_dict(ckpt["model_ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
