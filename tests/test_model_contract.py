"""The contract every model kind of ``mlcore.registry`` keeps, generators and photo models alike, checked the
same way for each (as pytorch/examples smoke-runs every example): train two steps on synthetic data, save,
resume bit-exactly (a resumed run ends where an uninterrupted one does), load with ``weights_only=True``, use
the loaded model (sample, or apply to a photo) and score it.

A new kind is tested by its registry line and its tiny case in ``CASES``; what is particular to a kind (its
maths, its networks, whether it learns) stays in that kind's own test file.
"""
import io
import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import numpy as np
import pytest
import torch
from PIL import Image

from mlcore import registry
from mlcore.checkpoint import load_checkpoint, save_checkpoint
from mlcore.ema import ema_decay_at
from mlcore.training import Trainer

from .synthetic import dataset, one_thread, pixels, product_photos  # noqa: F401  (one_thread: a fixture)

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ["dress", "hat"]


def _repair(model, photo):
    mask = Image.new("L", photo.size, 0)
    mask.paste(255, (10, 8, 30, 25))
    return model.repair(photo, mask)


@dataclass(frozen=True)
class Case:
    """A kind at its tiniest: config options, trainer keyword arguments, and (photo models) how to apply it."""

    options: dict
    hyper: dict = field(default_factory=dict)
    apply: Callable[[Any, Image.Image], Image.Image] | None = None


CASES = {
    "cgan": Case({"z_dim": 16, "g_width": 8, "d_width": 8}, {"r1_gamma": 1.0, "r1_every": 2}),
    "tcgan": Case({"g_width": 4, "d_width": 4}),
    "vae": Case({"latent_dim": 8, "enc_width": 4, "dec_width": 4, "kl_warmup_steps": 3}, {"lr": 1e-3}),
    "cvae": Case({"latent_dim": 8, "enc_width": 4, "dec_width": 4}),
    "ddpm": Case({"width": 8, "sample_steps": 3}, {"lr": 1e-3, "betas": (0.8, 0.99)}),
    "restore": Case({"width": 8, "tone_width": 4}, {"tone_batch": 3}, lambda model, photo: model.enhance(photo)),
    "inpaint": Case({"width": 8, "levels": 2, "dilations": [2]}, {}, _repair),
    "background": Case({"image_size": 32, "widths": [8, 16]}, {}, lambda model, photo: model.mask(photo)),
    "brandlook": Case(
        {"lut_size": 5, "curve_knots": 3, "luma_knots": 2, "learned_luts": 2, "thumb_size": 8, "train_size": 16,
         "width": 4, "hidden": 32, "max_references": 2},
        {}, lambda model, photo: model.apply(photo, model.look_of(product_photos(2))),
    ),
    # Owned by the harmonisation work: tiny options; applying it harmonises the photo's centre onto itself.
    "harmonise": Case({"size": 16, "width": 4, "hidden": 16}, {"lr": 1e-2}, lambda model, photo: model.harmonise_photo(photo)),
    # Owned by the scene-generator work: tiny options; applying it draws one backdrop.
    "scenes": Case(
        {"image_size": 64, "z_dim": 16, "g_width": 4, "d_width": 4, "min_photos": 6, "crops": 2},
        {"r1_gamma": 1.0, "r1_every": 2}, lambda model, photo: model.backdrop(photo.size, seed=0),
    ),
}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny networks: one torch thread (``synthetic.one_thread``)."""


def training_data(kind: str) -> tuple[Any, tuple]:
    """(tiny config, the trainer's data) of ``kind``: labelled synthetic squares for a generator (condition
    rows from their category, colour and title), synthetic product photos through the registry's ``prepare``
    for a photo model."""
    spec, case = registry.get_kind(kind), CASES[kind]
    if spec.family == registry.PHOTO_MODEL:
        return spec.prepare(product_photos(), **case.options)
    images, labels = dataset(size=64, count=8)
    categories = [CLASSES[int(i)] for i in labels]
    attributes = [{"colour": "red" if i % 2 == 0 else "blue"} for i in range(len(labels))]
    texts = [f"{attributes[i]['colour']} {category} from our shop" for i, category in enumerate(categories)]
    config = spec.config.for_training(classes=CLASSES, image_size=64, attributes=attributes, texts=texts, **case.options)
    return config, (images, config.condition_ids(categories, attributes, texts))


def make_trainer(kind: str, seed: int = 3) -> Trainer:
    config, data = training_data(kind)
    return Trainer(config, *data, batch_size=4, seed=seed, **CASES[kind].hyper)


@dataclass
class Run:
    """What every test of a kind looks at: an uninterrupted run of 4 steps (with its callback's calls), a twin
    of it, one from another seed, and a checkpoint after 2 steps."""

    straight: Trainer
    summary: dict
    calls: list
    twin: Trainer
    other_seed: Trainer
    first: Trainer
    checkpoint: bytes


@pytest.fixture(scope="module", params=list(registry.MODEL_KINDS))
def kind(request) -> str:
    """Every registered kind in turn (pytest runs all of one kind's tests before the next kind's)."""
    return request.param


@pytest.fixture(scope="module")
def run(kind) -> Run:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    calls = []
    straight = make_trainer(kind)
    summary = straight.fit(4, log_every=2, callback=lambda step, total, losses: calls.append((step, total, losses)))
    twin, other_seed, first = make_trainer(kind), make_trainer(kind, seed=4), make_trainer(kind)
    twin.fit(4, log_every=2)
    other_seed.fit(4, log_every=2)
    first.fit(2, log_every=2)
    buffer = io.BytesIO()
    first.save(buffer)
    torch.set_num_threads(before)
    return Run(straight, summary, calls, twin, other_seed, first, buffer.getvalue())


def states_equal(a: dict, b: dict) -> bool:
    """Nested state_dicts (networks, optimizers) equal to the bit."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(states_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(states_equal(x, y) for x, y in zip(a, b))
    if torch.is_tensor(a):
        return torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


def busy_photo() -> Image.Image:
    """A product on a backdrop of noise: the background kind's border model cannot judge it, so its network cuts
    it out (on a plain backdrop the border model would, and the network would go untested)."""
    photo = np.asarray(product_photos(1, (61, 45))[0])
    height, width = photo.shape[:2]
    inside = np.zeros((height, width, 1), bool)
    inside[height // 5 : height - height // 5, width // 4 : width - width // 4] = True
    noise = np.random.default_rng(0).integers(0, 256, photo.shape, dtype=np.uint8)
    return Image.fromarray(np.where(inside, photo, noise))


def ema_key(kind: str) -> str:
    return f"{registry.load(kind, 'objective').EMA}_ema"


def loaded_network(model) -> torch.nn.Module:
    """The network a loaded sampler, restorer, ... runs (the checkpoint's EMA copy)."""
    return model.generator if hasattr(model, "generator") else model.model


# ---- the registry ------------------------------------------------------------------------------------------

def test_every_registered_kind_has_a_case_and_listing_them_loads_no_torch():
    assert set(CASES) == set(registry.MODEL_KINDS)
    assert set(registry.KINDS) == {"cgan", "tcgan", "vae", "cvae", "ddpm"}
    assert set(registry.R1_KINDS) == {"cgan", "tcgan"}
    code = "import sys, mlcore.registry as r; r.MODEL_KINDS, r.KINDS, r.R1_KINDS; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_registry_line_names_the_kinds_parts(kind):
    spec = registry.get_kind(kind)
    assert spec.name == kind and spec.trainer is Trainer and spec.label
    assert registry.load(kind, "objective").CONFIG in spec.config.__mro__
    assert callable(spec.sampler.from_checkpoint)
    if spec.family == registry.PHOTO_MODEL:
        assert spec.config().kind == kind and callable(spec.prepare)
    else:
        config = spec.config.for_training(classes=CLASSES, image_size=64, attributes=[{}], texts=[""])
        assert config.kind == kind and config.condition_ids(["hat", "dress"]).shape[0] == 2
    with pytest.raises(KeyError, match="known"):
        registry.get_kind(kind + "x")


# ---- training ----------------------------------------------------------------------------------------------

def test_training_is_seeded_and_reports_its_losses(kind, run):
    keys = run.straight.objective.loss_keys
    summary = run.summary
    assert summary["steps_done"] == 4 and summary["stopped"] == "completed" and run.straight.step == 4
    assert {"steps_done", "step", "seconds", "images_per_second", "stopped", "losses", *keys} <= set(summary)
    assert summary["images_per_second"] > 0 and all(math.isfinite(summary[key]) for key in keys)
    assert [call[:2] for call in run.calls] == [(2, 4), (4, 4)] and set(run.calls[0][2]) == set(keys)
    assert run.straight.history["step"] == [2, 4] and all(len(run.straight.history[key]) == 2 for key in keys)
    assert all(math.isfinite(v) for key in keys for v in run.straight.history[key])
    # Same seed and data: the same weights, EMA copy, optimizer states and losses; another seed: others.
    assert states_equal(run.straight.network_state(), run.twin.network_state())
    assert run.straight.history == run.twin.history
    trained = run.straight.objective.EMA
    assert not states_equal(run.straight.network_state()[trained], run.other_seed.network_state()[trained])


def test_ema_copy_is_frozen_and_lags_the_trained_network(kind, run):
    fresh = make_trainer(kind)
    assert states_equal(fresh.ema.state_dict(), fresh.objective.networks[fresh.objective.EMA].state_dict())
    trainer = run.straight
    ema, trained = trainer.networks[ema_key(kind)], trainer.objective.networks[trainer.objective.EMA]
    assert ema is trainer.ema and all(not p.requires_grad for p in ema.parameters()) and not ema.training
    assert not all(torch.equal(a, b) for a, b in zip(ema.parameters(), trained.parameters()))
    assert ema_decay_at(0, 0.999) < ema_decay_at(100, 0.999) <= 0.999


# ---- checkpoints -------------------------------------------------------------------------------------------

def test_checkpoint_is_plain_data_that_loads_weights_only(kind, run, tmp_path):
    ckpt = torch.load(io.BytesIO(run.checkpoint), weights_only=True)
    config = run.first.config
    assert ckpt["kind"] == kind and ckpt["format"] == 1 and ckpt["package_version"] == mlcore.__version__
    assert ckpt["config"] == config.to_dict() and registry.get_kind(kind).config.from_dict(ckpt["config"]) == config
    assert {ema_key(kind), *run.first.objective.networks, *run.first.optimizers} <= set(ckpt)
    assert {"step", "history", "hyperparameters", "rng"} <= set(ckpt) and ckpt["step"] == 2
    assert ckpt["hyperparameters"] == run.first.hyperparameters()
    path = tmp_path / "model.pt"
    path.write_bytes(run.checkpoint)
    for source in (path, str(path), run.checkpoint, io.BytesIO(run.checkpoint)):
        assert states_equal(load_checkpoint(source), ckpt)


def test_resume_continues_exactly_like_an_uninterrupted_run(kind, run):
    _, data = training_data(kind)
    resumed = Trainer.resume(io.BytesIO(run.checkpoint), *data)
    assert resumed.step == 2 and resumed.history["step"] == [2] and resumed.config == run.first.config
    assert resumed.hyperparameters() == run.first.hyperparameters()
    assert resumed.batch_size == 4 and resumed.seed == 3
    summary = resumed.fit(2, log_every=2)
    assert summary["steps_done"] == 2 and resumed.step == 4 and resumed.history == run.straight.history
    assert states_equal(resumed.network_state(), run.straight.network_state())
    assert torch.equal(resumed.rng.get_state(), run.straight.rng.get_state())


# ---- loading and using ------------------------------------------------------------------------------------

def test_loaded_checkpoint_is_the_ema_copy_and_is_used_the_same_every_time(kind, run, tmp_path):
    spec, case = registry.get_kind(kind), CASES[kind]
    path = tmp_path / "model.pt"
    path.write_bytes(run.checkpoint)
    sources = (run.checkpoint, io.BytesIO(run.checkpoint), path, str(path))
    loaded = [spec.sampler.from_checkpoint(source) for source in sources]
    for model in loaded:
        assert model.step == 2 and model.config == run.first.config and model.package_version == mlcore.__version__
        assert getattr(model, "classes", CLASSES) == CLASSES
        assert states_equal(loaded_network(model).state_dict(), run.first.network_state()[ema_key(kind)])
    if spec.family == registry.PHOTO_MODEL:
        photo = busy_photo()
        outputs = [case.apply(model, photo) for model in loaded]
        assert all(isinstance(out, Image.Image) and out.size == photo.size for out in outputs)
        assert all(np.array_equal(np.asarray(out), np.asarray(outputs[0])) for out in outputs)
    else:
        images = [model.generate_seeds("hat", [7, 8, 100, 7]) for model in loaded]
        assert all((pixels(batch) == pixels(images[0])).all() for batch in images)
        assert all(img.mode == "RGB" and img.size == (64, 64) for img in images[0])
        assert (pixels(images[0])[0] == pixels(images[0])[3]).all()
        assert not (pixels(images[0])[0] == pixels(images[0])[1]).all()
        for i, seed in enumerate([7, 8, 100]):
            single = pixels(loaded[0].generate_seeds("hat", [seed]))[0]
            assert np.abs(pixels(images[0])[i] - single).max() <= 1
        with pytest.raises(KeyError, match="dress, hat"):
            loaded[0].generate_seeds("sock", [1])
        with pytest.raises(ValueError, match="count"):
            loaded[0].generate("hat", 0, seed=0)


def test_loaded_model_is_scored(kind, run):
    spec = registry.get_kind(kind)
    model = spec.sampler.from_checkpoint(run.checkpoint)
    if spec.family == registry.GENERATOR:
        images = model.generate_seeds("dress", [1, 2])
        scores = model.score(images)
        assert len(scores) == 2 and all(0.0 <= s <= 1.0 for s in scores)
        assert model.score(images, "dress") == scores  # the class generate stored on the images
        assert model.score([]) == [] and len(model.score([Image.new("RGB", (50, 20), "red")])) == 1
        grid = run.first.sample_grid(3)
        assert grid.shape == (len(CLASSES) * 3, 3, 64, 64) and grid.min() >= -1 and grid.max() <= 1
        assert torch.equal(grid, run.first.sample_grid(3))
    elif spec.validate is not None:
        report = spec.validate(run.checkpoint, product_photos(2), seed=0)
        assert report["photos"] == 2 and report["tasks"]
        # Every task's choice: the model only where it beat everything else (mlcore.method_choice).
        for choice in report["tasks"].values():
            assert all(math.isfinite(v) for v in choice["psnr"].values())
            assert (choice["method"] == "model") == (choice["model_margin_db"] > 0), choice
        assert spec.validate(run.checkpoint, product_photos(2), seed=0) == report
    else:
        with pytest.raises(ValueError, match="no sample grid"):
            run.first.sample_grid(3)


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_loading_refuses_pickled_objects_and_other_kinds(kind, run, tmp_path):
    spec = registry.get_kind(kind)
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "package_version": "0", "kind": kind, "config": run.first.config.to_dict(), "x": Payload()}, evil)
    with pytest.raises(ValueError, match="refusing"):
        spec.sampler.from_checkpoint(evil)
    _, data = training_data(kind)
    with pytest.raises(ValueError, match="refusing"):
        Trainer.resume(evil, *data)
    other = "brandlook" if kind != "brandlook" else "cgan"
    foreign = io.BytesIO()
    save_checkpoint({"kind": other, "config": {}}, foreign)
    with pytest.raises(ValueError, match=f"{other}.*{kind}"):
        spec.sampler.from_checkpoint(foreign.getvalue())
    with pytest.raises(ValueError, match="not one of"):
        Trainer.resume(io.BytesIO(run.checkpoint), *data, kinds=(other,))
    unknown = io.BytesIO()
    save_checkpoint({"kind": kind + "X", "config": {}}, unknown)
    with pytest.raises(ValueError, match="not one of"):
        Trainer.resume(io.BytesIO(unknown.getvalue()), *data)
    with pytest.raises(ValueError, match="checkpoint"):
        spec.sampler.from_checkpoint(b"not a checkpoint")
