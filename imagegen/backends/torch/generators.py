"""Generators: fitting one on a training set (fresh, continued from a periodic checkpoint, or resumed from a
model version), loading a stored one for inference, and the pictures of a training run."""
import logging
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any, BinaryIO

from mlcore.checkpoint import load_checkpoint
from mlcore.conditioning.vocab import tokenize, word_forms
from mlcore.inference_options import InferenceOptions
from mlcore.plots import save_loss_curves, save_sample_grid
from mlcore.registry import get_kind

logger = logging.getLogger(__name__)


def load_generator(fh: BinaryIO, kind: str, *, device: str, options: InferenceOptions | None = None):
    """The sampler of generator ``kind`` from its checkpoint (``weights_only=True``), set for fast inference
    with ``options`` (without: as trained, which the measurements after training use)."""
    sampler = get_kind(kind).sampler.from_checkpoint(fh, device=device)
    if options is not None:
        sampler.set_inference(options)
    return sampler


def _condition_ids(config, data):
    return config.condition_ids(data.categories, data.attributes, data.texts)


def _continue_from(checkpoint: Path | None, kind: str, batch_size: int, data, device: str):
    """A trainer continuing this job's own periodic checkpoint (an earlier attempt got that far), or None.

    A checkpoint of another batch size is from before an out-of-memory retry halved it: not this run's."""
    if checkpoint is None or not checkpoint.exists():
        return None
    saved = checkpoint.read_bytes()
    ckpt = load_checkpoint(BytesIO(saved))
    if ckpt.get("hyperparameters", {}).get("batch_size") != batch_size:
        logger.info("not continuing from %s: it trained with another batch size", checkpoint)
        return None
    trainer_class = get_kind(kind).trainer
    config = trainer_class.config_from_dict(ckpt["config"])
    logger.info("training continues from %s at step %s", checkpoint, ckpt["step"])
    return trainer_class.resume(BytesIO(saved), data.images, _condition_ids(config, data), device=device)


def _build_trainer(params: dict, batch_size: int, data, device: str, resumed: tuple[dict, bytes] | None, r1_every: int):
    spec = get_kind(params["kind"])
    if resumed is not None:
        # A resumed model keeps its vocabulary: its embedding rows are indexed by it.
        config_dict, saved = resumed
        config = spec.trainer.config_from_dict(config_dict)
        return spec.trainer.resume(BytesIO(saved), data.images, _condition_ids(config, data), device=device)
    config = spec.config.for_training(
        classes=data.classes, image_size=params["image_size"], attributes=data.attributes, texts=data.texts
    )
    penalty = {"r1_gamma": params["r1_gamma"], "r1_every": r1_every} if params.get("r1_gamma") else {}
    return spec.trainer(
        config, data.images, _condition_ids(config, data), batch_size=batch_size, seed=params["seed"],
        device=device, **penalty,
    )


def fit_generator(
    params: dict, data, *, batch_size: int, steps: Callable[[int], int], device: str, checkpoint: Path | None,
    checkpoint_every: int, resumed: tuple[dict, bytes] | None, base_step: int, max_seconds: float | None,
    r1_every: int, report: Callable[[float, str], None], ctx: Any = None,
) -> tuple[Any, dict]:
    """Train generator ``params["kind"]`` on ``data`` with ``batch_size``; returns (trainer, summary).

    It continues this run's periodic ``checkpoint`` when one of this batch size exists, else starts from the
    ``resumed`` version (config, checkpoint bytes) or from scratch; ``steps(batch_size)`` is the run's length.
    The last step counts from ``base_step`` (the resumed version's), also when the checkpoint is further on.
    With ``ctx`` (mlcore.distributed) this process trains as one rank of a DistributedDataParallel run."""
    trainer = _continue_from(checkpoint, params["kind"], batch_size, data, device)
    start_step = base_step
    if trainer is None:
        trainer = _build_trainer(params, batch_size, data, device, resumed, r1_every)
        start_step = trainer.step
    if ctx is not None:
        trainer.distribute(ctx)
    total_steps = max(0, start_step + steps(batch_size) - trainer.step)

    def on_step(step: int, target: int, losses: dict) -> None:
        done, total = step - start_step, target - start_step
        # Each kind reports its own loss terms (a GAN's d_loss/g_loss, a VAE's recon/kl): show what is there.
        terms = " · ".join(f"{name} {value:.3f}" for name, value in list(losses.items())[:4])
        report(5 + 85 * done / max(total, 1), f"Step {done}/{total} · {terms}")

    periodic = {"checkpoint_every": checkpoint_every, "checkpoint_path": checkpoint} if checkpoint else {}
    return trainer, trainer.fit(total_steps, max_seconds=max_seconds, callback=on_step, **periodic)


def named_category(text: str | None, categories: list[str]) -> str | None:
    """The category a text names ("red leather skirts" -> "skirt"), None when it names none or several."""
    words = {form for word in tokenize(text) for form in word_forms(word)}
    named = [c for c in categories if set(tokenize(c)) and set(tokenize(c)) <= words]
    return named[0] if len(named) == 1 else None


def generator_plots(trainer, columns: int) -> dict[str, bytes]:
    """The trainer's sample grid (``columns`` samples per class) and loss curves as PNG bytes, by file name."""
    grid, curve = BytesIO(), BytesIO()
    save_sample_grid(trainer.sample_grid(columns), grid, nrow=columns)
    save_loss_curves(trainer.history, curve)
    return {"sample_grid.png": grid.getvalue(), "loss_curve.png": curve.getvalue()}
