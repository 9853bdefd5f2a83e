"""mlcore's class-conditional GAN (tiny models, CPU, synthetic images), the one trainer's loop (budgets,
callbacks), checkpoints' envelope, data loading, plots and package hygiene. What every kind shares (train,
save, resume, load, sample, score) is in test_model_contract.py."""

from __future__ import annotations

import ast
import io
import math
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import mlcore
from mlcore.augment import AUGMENTS, diff_augment
from mlcore.checkpoint import load_checkpoint, save_checkpoint
from mlcore.data import load_image, stack_images, to_square_tensor
from mlcore.gan.config import AUGMENTATIONS, GANConfig
from mlcore.gan.networks import Discriminator, Generator
from mlcore.gan.objective import (
    d_hinge_loss,
    d_nonsaturating_loss,
    g_hinge_loss,
    g_nonsaturating_loss,
    r1_penalty,
)
from mlcore.gan.sampler import Sampler
from mlcore.plots import save_loss_curves, save_sample_grid
from mlcore.seeding import sample_noise
from mlcore.training import Trainer

pytestmark = pytest.mark.slow

MLCORE_DIR = Path(mlcore.__file__).resolve().parent
CLASSES = ["dress", "hat", "shoes"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_config(**overrides) -> GANConfig:
    values = dict(classes=CLASSES, image_size=32, z_dim=16, g_width=8, d_width=8)
    values.update(overrides)
    return GANConfig(**values)


def synthetic_data(count: int = 12, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class coloured squares on noise: enough structure for a few steps."""
    gen = torch.Generator().manual_seed(123)
    images = torch.randint(0, 256, (count, 3, size, size), generator=gen, dtype=torch.uint8)
    labels = torch.arange(count) % len(CLASSES)
    for i, label in enumerate(labels.tolist()):
        images[i, label, size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    return images, labels


def make_trainer(seed: int = 0, **kwargs) -> Trainer:
    images, labels = synthetic_data()
    return Trainer(tiny_config(), images, labels, batch_size=4, seed=seed, **kwargs)


def states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --- config -------------------------------------------------------------------------


def test_config_round_trip_and_validation():
    config = tiny_config(loss="nonsaturating", augment="color")
    assert GANConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown GANConfig keys"):
        GANConfig.from_dict({**config.to_dict(), "dropout": 0.1})
    for bad_size in (48, 16, 100):
        with pytest.raises(ValueError, match="image_size"):
            tiny_config(image_size=bad_size)
    with pytest.raises(ValueError, match="loss"):
        tiny_config(loss="wasserstein")
    with pytest.raises(ValueError, match="augmentation"):
        tiny_config(augment="color,flip")
    with pytest.raises(ValueError, match="duplicates"):
        tiny_config(classes=["a", "a"])
    assert set(AUGMENTS) == set(AUGMENTATIONS)


# --- networks -----------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 128])
def test_generator_shape_and_range(size):
    config = tiny_config(image_size=size, g_width=4)
    torch.manual_seed(0)
    G = Generator(config)
    out = G(torch.randn(3, config.z_dim) * 10, torch.tensor([0, 1, 2]))
    assert out.shape == (3, 3, size, size)
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert out.std() > 0  # not collapsed to a constant


@pytest.mark.parametrize("size", [32, 64, 128])
def test_discriminator_logits_shape(size):
    config = tiny_config(image_size=size, d_width=4)
    D = Discriminator(config)
    images = torch.rand(5, 3, size, size) * 2 - 1
    labels = torch.tensor([0, 1, 2, 0, 1])
    logits = D(images, labels)
    assert logits.shape == (5,)
    # The projection head's per-class logits agree with the conditional forward.
    D.eval()
    all_logits = D.all_class_logits(images)
    assert all_logits.shape == (5, len(CLASSES))
    torch.testing.assert_close(all_logits[torch.arange(5), labels], D(images, labels))


def test_generator_conditioning_changes_output():
    G = Generator(tiny_config())
    for norm in G.norms:
        torch.nn.init.normal_(norm.gain.weight)
    z = torch.randn(1, 16)
    assert not torch.allclose(G(z, torch.tensor([0])), G(z, torch.tensor([1])))


# --- objectives ---------------------------------------------------------------------


def test_hinge_losses_on_known_logits():
    ones = torch.ones(4)
    assert d_hinge_loss(ones, -ones).item() == 0.0  # both sides past the margin
    assert d_hinge_loss(-ones, ones).item() == 4.0
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-0.5, 0.0])
    assert d_hinge_loss(real, fake).item() == pytest.approx((0.5 + 0.0) / 2 + (0.5 + 1.0) / 2)
    assert g_hinge_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_nonsaturating_losses_match_log_sigmoid_and_stay_finite():
    zeros = torch.zeros(3)
    assert d_nonsaturating_loss(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    assert g_nonsaturating_loss(zeros).item() == pytest.approx(math.log(2))
    real, fake = torch.tensor([0.3, -1.2, 2.5]), torch.tensor([-0.7, 0.4, 1.1])
    expected = -(torch.sigmoid(real).log().mean() + (1 - torch.sigmoid(fake)).log().mean())
    assert d_nonsaturating_loss(real, fake).item() == pytest.approx(expected.item(), rel=1e-5)
    assert g_nonsaturating_loss(fake).item() == pytest.approx(-torch.sigmoid(fake).log().mean().item(), rel=1e-5)
    extreme = torch.tensor([-200.0, 200.0])
    assert torch.isfinite(d_nonsaturating_loss(extreme, extreme))
    assert torch.isfinite(g_nonsaturating_loss(extreme))


def test_r1_penalty_of_linear_discriminator_is_squared_weight_norm():
    weight = torch.tensor([1.0, -2.0, 3.0], requires_grad=True)
    x = torch.randn(4, 3, requires_grad=True)
    penalty = r1_penalty(x @ weight, x)
    assert penalty.item() == pytest.approx(14.0)
    penalty.backward()  # the graph is kept, so D's weights get the penalty's gradient
    torch.testing.assert_close(weight.grad, 2 * weight.detach())


def test_sample_noise_is_seeded_and_leaves_global_rng_alone():
    torch.manual_seed(7)
    before = torch.random.get_rng_state()
    a, b, c = sample_noise(5, 16, seed=1), sample_noise(5, 16, seed=1), sample_noise(5, 16, seed=2)
    assert a.shape == (5, 16) and a.device.type == "cpu"
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(torch.random.get_rng_state(), before)
    with pytest.raises(ValueError):
        sample_noise(0, 16, seed=1)


def test_diff_augment_is_seeded_and_differentiable():
    x = (torch.rand(6, 3, 32, 32) * 2 - 1).requires_grad_(True)
    policy = "color,translation,cutout"
    a = diff_augment(x, policy, torch.Generator().manual_seed(3))
    b = diff_augment(x, policy, torch.Generator().manual_seed(3))
    c = diff_augment(x, policy, torch.Generator().manual_seed(4))
    assert a.shape == x.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(diff_augment(x, "", torch.Generator()), x)


def test_cutout_zeroes_a_region():
    x = torch.ones(4, 3, 32, 32)
    out = diff_augment(x, "cutout", torch.Generator().manual_seed(0))
    zero_fraction = (out == 0).float().mean(dim=(1, 2, 3))
    assert ((zero_fraction > 0.05) & (zero_fraction <= 0.25 + 1e-6)).all()


# --- the one trainer's loop, the GAN's steps ------------------------------------------


def test_fit_returns_summary_history_and_calls_back():
    trainer = make_trainer()
    calls = []
    summary = trainer.fit(5, log_every=2, callback=lambda step, total, losses: calls.append((step, total, losses)))
    assert summary["steps_done"] == 5 and summary["stopped"] == "completed"
    assert summary["images_per_second"] > 0 and summary["seconds"] > 0
    assert {"d_loss", "g_loss"} <= summary.keys() and math.isfinite(summary["d_loss"])
    assert [c[0] for c in calls] == [2, 4, 5] and all(c[1] == 5 for c in calls)
    assert trainer.history["step"] == [2, 4, 5]
    assert len(trainer.history["d_loss"]) == len(trainer.history["g_loss"]) == 3
    assert trainer.step == 5


def test_callback_returning_false_stops_training():
    trainer = make_trainer()
    summary = trainer.fit(100, log_every=1, callback=lambda step, total, losses: step < 2)
    assert summary["stopped"] == "callback" and summary["steps_done"] == 2 and trainer.step == 2


def test_max_seconds_budget_stops_early():
    trainer = make_trainer()
    calls = []
    summary = trainer.fit(10**6, max_seconds=0.5, log_every=10**6, callback=lambda *args: calls.append(args))
    assert summary["stopped"] == "time"
    assert 0 < summary["steps_done"] < 10**6
    assert summary["seconds"] < 3.0
    # The last step done is still recorded and reported.
    assert calls and calls[-1][0] == trainer.step == trainer.history["step"][-1]
    assert make_trainer().fit(10, max_seconds=0)["steps_done"] == 0


def test_ema_batchnorm_statistics_are_recalibrated_for_sampling():
    trainer = make_trainer()
    trainer.fit(4)
    raw_mean = trainer.generator.stem_norm.norm.running_mean.clone()
    assert torch.equal(trainer.generator_ema.stem_norm.norm.running_mean, raw_mean)  # copied each step
    trainer.sample_grid()
    assert not torch.allclose(trainer.generator_ema.stem_norm.norm.running_mean, raw_mean)
    assert torch.equal(trainer.generator.stem_norm.norm.running_mean, raw_mean)  # training untouched
    assert not trainer.generator_ema.training


def test_trainer_rejects_bad_data():
    images, labels = synthetic_data()
    with pytest.raises(ValueError, match="uint8"):
        Trainer(tiny_config(), images.float(), labels)
    with pytest.raises(ValueError, match="labels"):
        Trainer(tiny_config(), images, labels + 5)
    with pytest.raises(ValueError, match="uint8"):
        Trainer(tiny_config(image_size=64), images, labels)


def test_nonsaturating_loss_and_r1_train():
    images, labels = synthetic_data()
    trainer = Trainer(tiny_config(loss="nonsaturating"), images, labels, batch_size=4, r1_gamma=1.0, r1_every=2)
    summary = trainer.fit(3)
    assert summary["steps_done"] == 3 and math.isfinite(summary["d_loss"])


# --- checkpoints and sampling ------------------------------------------------------


def test_sampler_images_do_not_depend_on_the_batch(tmp_path):
    trainer = make_trainer()
    trainer.fit(2)
    path = tmp_path / "model.pt"
    trainer.save(path)
    sampler = Sampler.from_checkpoint(path)
    # Eval-mode BatchNorm: an image depends on its own noise, not on the batch size.
    single = sampler.generate_tensor([1], seed=4)
    torch.testing.assert_close(single[0], sampler.generate_tensor([1, 1, 1], seed=4)[0], atol=1e-5, rtol=0)
    with torch.inference_mode():
        expected = trainer.generator_ema.eval()(sample_noise(4, 16, seed=9), torch.tensor([0, 1, 2, 2]))
    assert torch.equal(sampler.generate_tensor([0, 1, 2, 2], seed=9), expected)


def test_fresh_process_generates_identical_images(tmp_path):
    trainer = make_trainer()
    trainer.fit(2)
    ckpt, out = tmp_path / "model.pt", tmp_path / "images.pt"
    trainer.save(ckpt)
    here = Sampler.from_checkpoint(ckpt).generate_tensor([0, 1, 2], seed=11)
    code = (
        "import sys, torch; from mlcore.gan.sampler import Sampler; "
        "torch.save(Sampler.from_checkpoint(sys.argv[1]).generate_tensor([0, 1, 2], seed=11), sys.argv[2])"
    )
    repo_root = str(MLCORE_DIR.parent)
    subprocess.run([sys.executable, "-c", code, str(ckpt), str(out)], check=True, cwd=repo_root, timeout=60)
    assert torch.equal(torch.load(out, weights_only=True), here)


class _Payload:
    """Any non-plain object; unpickling it would run this module's code."""

    ran = False

    def __reduce__(self):
        return (_mark_ran, ())


def _mark_ran():
    _Payload.ran = True
    return "pwned"


def test_load_checkpoint_refuses_pickled_objects(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "package_version": "0.1.0", "kind": "cgan", "config": {}, "x": _Payload()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_checkpoint(path)
    plain_pickle = tmp_path / "evil.pkl"
    plain_pickle.write_bytes(pickle.dumps(_Payload(), protocol=2))
    with pytest.raises(ValueError):
        load_checkpoint(plain_pickle)
    assert _Payload.ran is False
    with pytest.raises(ValueError):
        Sampler.from_checkpoint(path)


def test_load_checkpoint_checks_envelope(tmp_path):
    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(2)}, buffer)
    with pytest.raises(ValueError, match="missing required keys"):
        load_checkpoint(io.BytesIO(buffer.getvalue()))
    buffer = io.BytesIO()
    save_checkpoint({"kind": "cgan", "config": {}}, buffer)
    assert load_checkpoint(io.BytesIO(buffer.getvalue()))["package_version"] == mlcore.__version__
    future = io.BytesIO()
    torch.save({"format": 99, "package_version": "9", "kind": "cgan", "config": {}}, future)
    with pytest.raises(ValueError, match="format 99"):
        load_checkpoint(io.BytesIO(future.getvalue()))
    with pytest.raises(ValueError):
        load_checkpoint(io.BytesIO(b""))
    with pytest.raises(ValueError):
        save_checkpoint({"weights": torch.zeros(1)}, io.BytesIO())


# --- data ---------------------------------------------------------------------------


def _png_bytes(img: Image.Image) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def test_load_image_rejects_empty_and_text_files(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_image(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a photo\n")
    with pytest.raises(ValueError, match="not an image"):
        load_image(text)
    truncated = _png_bytes(Image.new("RGB", (64, 64), "blue"))[:60]
    with pytest.raises(ValueError):
        load_image(truncated)


def test_load_image_flattens_alpha_to_rgb_from_any_source(tmp_path):
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    rgba.putpixel((5, 5), (200, 10, 10, 255))
    data = _png_bytes(rgba)
    path = tmp_path / "cutout.png"
    path.write_bytes(data)
    for source in (path, str(path), data, io.BytesIO(data)):
        img = load_image(source)
        assert img.mode == "RGB" and img.size == (10, 10)
        assert img.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white backdrop
        assert img.getpixel((5, 5)) == (200, 10, 10)


def test_load_image_applies_exif_rotation():
    img = Image.new("RGB", (40, 20), "white")
    img.paste((255, 0, 0), (0, 0, 10, 20))  # red strip on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", exif=exif, quality=95)
    loaded = load_image(buffer.getvalue())
    assert loaded.size == (20, 40)
    red, green, _ = loaded.getpixel((10, 3))  # the left strip is now on top
    assert red > 200 and green < 60


def test_to_square_tensor_pads_with_border_colour_without_cropping():
    img = Image.new("RGB", (60, 30), (10, 200, 30))
    img.paste((250, 0, 0), (0, 10, 60, 20))  # full-width red band: must survive
    square = to_square_tensor(img, 32)
    assert square.dtype == torch.uint8 and square.shape == (3, 32, 32)
    assert square[:, 0, 16].tolist() == [10, 200, 30]  # padding uses the backdrop colour
    assert square[0, 16, 0] > 200 and square[0, 16, 31] > 200  # band reaches both edges
    batch = stack_images([img, Image.new("RGB", (20, 50), "blue")], 32)
    assert batch.shape == (2, 3, 32, 32) and batch.dtype == torch.uint8


# --- plots and package hygiene ------------------------------------------------------


def test_plots_write_pngs(tmp_path):
    grid = torch.rand(6, 3, 32, 32) * 2 - 1
    buffer = io.BytesIO()
    save_sample_grid(grid, buffer, nrow=3)
    assert buffer.getvalue().startswith(PNG_MAGIC)
    history = {"step": [1, 2, 3], "d_loss": [2.0, 1.5, 1.2], "g_loss": [0.5, 0.7, 0.9], "d_real": [0, 1, 1], "d_fake": [0, -1, -1]}
    path = tmp_path / "loss.png"
    save_loss_curves(history, path)
    assert path.read_bytes().startswith(PNG_MAGIC)
    assert Image.open(path).size[0] > 100


def test_mlcore_never_imports_django_or_the_app():
    forbidden = ("django", "imagegen", "shop", "rest_framework", "celery")
    offenders = []
    sources = sorted(MLCORE_DIR.rglob("*.py"))
    assert len(sources) >= 8
    for source in sources:
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [f"{source.name}: {n}" for n in names if n.split(".")[0] in forbidden]
    assert offenders == []
