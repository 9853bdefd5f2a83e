"""A tiny training run for tests/test_distributed.py, started under torchrun (or alone, as the plain trainer).

Each rank writes ``<report>/rank<R>.json``: its step, world size, losses and a hash of every state_dict it
holds, so the test can compare ranks and runs. ``--save DIR`` has every rank call ``save`` on
``DIR/rank<R>.pt`` (only rank 0 may write); ``--checkpoint PATH`` resumes from PATH when it exists and
writes a checkpoint there every ``--checkpoint-every`` steps.
"""
import argparse
import hashlib
import json
import os
from pathlib import Path

import torch

from mlcore import distributed
from mlcore.gan.config import GANConfig
from mlcore.diffusion.config import DiffusionConfig
from mlcore.registry import get_kind
from mlcore.textgan.config import TextGANConfig
from mlcore.vae.config import CVAEConfig
from tests.synthetic import dataset

CLASSES = ["dress", "hat"]
TEXTS = ["red dress from our shop", "blue hat from our shop"]


def build(kind: str, resume: Path | None):
    """A tiny trainer of ``kind`` on 64 px synthetic squares (resumed from ``resume`` when given)."""
    images, labels = dataset(size=64, count=8)
    spec = get_kind(kind)
    if kind == "cgan":
        config = GANConfig(classes=CLASSES, image_size=64, z_dim=16, g_width=8, d_width=8)
    elif kind == "tcgan":
        attributes = [{"colour": "red" if i % 2 == 0 else "blue"} for i in range(len(labels))]
        texts = [TEXTS[int(label)] for label in labels]
        config = TextGANConfig.for_training(
            classes=CLASSES, image_size=64, attributes=attributes, texts=texts, g_width=4, d_width=4
        )
        labels = config.condition_ids([CLASSES[int(i)] for i in labels], attributes, texts)
    elif kind == "cvae":
        config = CVAEConfig(classes=CLASSES, image_size=64, latent_dim=8, enc_width=4, dec_width=4)
    elif kind == "ddpm":
        config = DiffusionConfig(classes=CLASSES, image_size=64, width=8, sample_steps=4)
    else:
        raise SystemExit(f"unknown kind {kind}")
    if resume is not None:
        return spec.trainer.resume(resume, images, labels)
    extra = {"r1_gamma": 1.0, "r1_every": 2} if kind == "cgan" else {}
    return spec.trainer(config, images, labels, batch_size=4, seed=7, **extra)


def state_hashes(trainer) -> dict[str, str]:
    """sha256 of each state_dict the trainer checkpoints (networks, EMA copy, optimizers)."""
    hashes = {}
    for name, state in trainer.network_state().items():
        digest = hashlib.sha256()
        for key, value in sorted(_flatten(state, name)):
            digest.update(key.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes() if torch.is_tensor(value) else repr(value).encode())
        hashes[name] = digest.hexdigest()
    return hashes


def _flatten(value, prefix):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}.{i}")
    else:
        yield prefix, value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kind", default="cgan")
    parser.add_argument("--steps", type=int, required=True, help="train until this global step")
    parser.add_argument("--report", type=Path, required=True)
    parser.add_argument("--save", type=Path)
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--checkpoint-every", type=int, default=2)
    parser.add_argument("--die-at-step", type=int, help="rank 1 of torchrun's first attempt dies at this step")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ctx = distributed.initialise("cpu") if distributed.launched_by_torchrun() else None
    resume = args.checkpoint if args.checkpoint is not None and args.checkpoint.exists() else None
    trainer = build(args.kind, resume)
    if ctx is not None:
        trainer.distribute(ctx)
    periodic = {"checkpoint_every": args.checkpoint_every, "checkpoint_path": args.checkpoint} if args.checkpoint else {}
    first_attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"

    def die_on_cue(step, target, losses):
        if args.die_at_step == step and first_attempt and ctx is not None and ctx.rank == 1:
            os._exit(3)  # as abruptly as a killed process: no teardown, no flush

    summary = trainer.fit(args.steps - trainer.step, log_every=2, callback=die_on_cue, **periodic)
    rank = ctx.rank if ctx is not None else 0
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
        trainer.save(args.save / f"rank{rank}.pt")
    args.report.mkdir(parents=True, exist_ok=True)
    report = {
        "rank": rank,
        "pid": os.getpid(),
        "resumed_from_step": None if resume is None else summary["step"] - summary["steps_done"],
        "step": trainer.step,
        "world_size": summary["world_size"],
        "global_batch_size": summary["global_batch_size"],
        "losses": summary["losses"],
        "hashes": state_hashes(trainer),
    }
    (args.report / f"rank{rank}.json").write_text(json.dumps(report))
    if ctx is not None:
        # Leave together, as the app's run_rank does: a rank that tears down while another still holds the
        # group can abort in gloo's C++ ("terminate called without an active exception").
        distributed.barrier(ctx)
    distributed.teardown()


if __name__ == "__main__":
    main()
