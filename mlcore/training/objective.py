"""What a kind's objective gives the one ``Trainer``: its networks, its loss and optimiser steps, its optimizers'
parameter groups, and the samples it shows.

The trainer owns the loop, the EMA copy, the random stream and checkpoints; it never knows which kind it
trains. An objective owns everything that differs between kinds, and does no I/O. ``Objective`` is the
interface, with the common case filled in: one network, saved as "model" and updated by one Adam
("optimizer"), whose ``lr`` is the objective's own hyperparameter. The GAN objective overrides it for its two.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from ..seeding import build_seeded

# optimise(optimizer name, loss, clip_norm=None): one step of that optimizer on ``loss`` (the trainer's).
Optimise = Callable[..., None]


class Objective:
    """Base of the kinds' objectives.

    A subclass names ``CONFIG`` (the config class it trains), ``DEFAULTS`` (the trainer's hyperparameters
    ``batch_size``, ``betas`` and ``ema_decay`` for this kind) and ``LOSS_KEYS`` (the terms ``train_step``
    returns, in log order). It is built as ``cls(config, *data, device=, seed=, batch_size=, **options)``,
    checks its data, builds its networks from ``seed`` (``self.networks``, by checkpoint key) and keeps
    ``options`` (its own hyperparameters, e.g. ``lr``) for ``options()``.
    """

    CONFIG: type
    DEFAULTS: dict[str, Any]
    LOSS_KEYS: tuple[str, ...] = ("loss",)
    # The network whose exponential moving average samples; the copy is saved as f"{EMA}_ema".
    EMA = "model"
    # Whether every trained forward goes through what ``wrap`` made (so DistributedDataParallel can wrap it).
    DISTRIBUTES = False
    # The default ``train_step`` clips the gradients' norm to this, when set.
    CLIP_NORM: float | None = None

    networks: dict[str, nn.Module]

    def __init__(self, config: Any, *, device: torch.device, seed: int, batch_size: int) -> None:
        if not isinstance(config, self.CONFIG):
            raise ValueError(f"config must be a {self.CONFIG.__name__}, got {type(config).__name__}")
        self.config = config
        self.device = device
        self.seed = seed
        self.batch_size = batch_size

    def _build_model(
        self, network: Callable[[Any], nn.Module], lr: float, memory_format: torch.memory_format = torch.preserve_format,
    ) -> None:
        """The common case: one network ``self.model`` built from ``seed`` on the CPU (the same weights on every
        device), trained by one Adam with learning rate ``lr``."""
        self.lr = float(lr)
        self.model = build_seeded(lambda: network(self.config), self.seed).to(self.device, memory_format=memory_format).train()
        self.networks = {"model": self.model}
        self.wrap(lambda module: module)

    @property
    def loss_keys(self) -> tuple[str, ...]:
        """The terms ``train_step`` returns, in the order the history logs them."""
        return self.LOSS_KEYS

    def options(self) -> dict[str, Any]:
        """The objective's own keyword arguments that rebuild it (plain python values, saved in checkpoints)."""
        return {"lr": self.lr}

    def param_groups(self) -> dict[str, tuple[Iterable[nn.Parameter], float]]:
        """Optimizer name (its checkpoint key) -> (the parameters it updates, learning rate)."""
        return {"optimizer": (self.model.parameters(), self.lr)}

    def wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Keep ``wrap(network)`` for the forwards whose backward updates it (the identity in one process,
        DistributedDataParallel under ``Trainer.distribute``); the raw networks stay for state_dicts."""
        self.model_train = wrap(self.model)

    def sample_batch(self, rng: torch.Generator) -> Any:
        """A training batch, every random draw from ``rng`` (for the default ``train_step``)."""
        raise NotImplementedError

    def terms(self, batch: Any, model: nn.Module | None = None) -> dict[str, torch.Tensor]:
        """The loss terms of ``model`` (default: the trained network) on ``batch``; "loss" is what is optimised."""
        raise NotImplementedError

    def train_step(
        self, rng: torch.Generator, step: int, optimise: Optimise, batch: Any = None,
    ) -> dict[str, torch.Tensor]:
        """One training step at ``step``: every random draw from ``rng``, every update through ``optimise``;
        returns the loss terms named by ``loss_keys``. The common case: a batch drawn from ``rng`` (or the one
        given), one step of the one optimizer on its "loss"."""
        terms = self.terms(self.sample_batch(rng) if batch is None else batch)
        optimise("optimizer", terms["loss"], clip_norm=self.CLIP_NORM)
        return terms

    def calibrate_ema(self, ema: nn.Module) -> None:
        """Make the EMA copy ready to sample (only networks with batch statistics need anything here)."""

    def sample_grid(self, ema: nn.Module, columns: int) -> torch.Tensor:
        """Samples of the EMA copy in [-1, 1] on the CPU, one row per class, from fixed (seeded) noise."""
        raise ValueError(f"the {self.config.kind!r} kind makes no sample grid")
