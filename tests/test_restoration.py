"""mlcore.restoration: degradations, metrics, networks, what training learns, tiled restoration, validation.
What every kind shares (train, save, resume, load, apply) is in test_model_contract.py."""
import io
import math

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import numpy as np
import pytest
import torch
from PIL import Image

from mlcore.photos import check_photos, photo_tensors, to_float, to_uint8
from mlcore.restoration import degrade
from mlcore.restoration.config import RestorationConfig
from mlcore.restoration.degrade import Degradation, NAMED, random_degradation
from mlcore.restoration.metrics import psnr, ssim
from mlcore.restoration.networks import LocalNet, RestorationModel, apply_tone, halo, receptive_field
from mlcore.restoration.sampler import Restorer
from mlcore.training import Trainer

from .synthetic import one_thread, pixels  # noqa: F401  (one_thread: a fixture)

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny networks: one torch thread (``synthetic.one_thread``)."""


def tiny(**overrides):
    return RestorationConfig(**{"width": 8, "tone_width": 4, "crop_size": 32, **overrides})


def photos(count=6, seed=0):
    """Photos of different sizes: smooth colour gradients with a few sharp-edged blocks."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        h, w = 40 + 8 * i, 48 + 4 * i
        ys, xs = torch.linspace(0, 1, h)[:, None], torch.linspace(0, 1, w)[None, :]
        colour = torch.rand(3, 1, 1, generator=gen)
        img = 0.2 + 0.6 * colour * (0.5 * ys + 0.5 * xs)
        for _ in range(3):
            y, x = int(torch.randint(h - 10, (), generator=gen)), int(torch.randint(w - 10, (), generator=gen))
            img[:, y : y + 10, x : x + 10] = torch.rand(3, 1, 1, generator=gen)
        out.append(to_uint8(img))
    return out


def mid_grey(h=64, w=64):
    return torch.full((3, h, w), 0.5)


# ---- degradations -----------------------------------------------------------------------------------------

def test_random_degradations_are_reproducible_from_the_seed():
    image = to_float(photos(1)[0])
    first = [random_degradation(torch.Generator().manual_seed(s)) for s in range(30)]
    again = [random_degradation(torch.Generator().manual_seed(s)) for s in range(30)]
    assert first == again and len(set(first)) > 20
    for d in first[:8]:
        a = d.apply(image, torch.Generator().manual_seed(5))
        b = d.apply(image, torch.Generator().manual_seed(5))
        assert torch.equal(a, b)
    noisy = Degradation(noise_sigma=10)
    assert not torch.equal(noisy.apply(image, torch.Generator().manual_seed(1)), noisy.apply(image, torch.Generator().manual_seed(2)))


def test_the_mix_draws_every_kind_and_only_the_kinds_asked_for():
    gen = torch.Generator().manual_seed(0)
    drawn = [random_degradation(gen) for _ in range(400)]
    assert any(d.noise_sigma > 0 for d in drawn) and any(d.blur_sigma > 0 for d in drawn)
    assert any(d.jpeg_quality for d in drawn) and {d.scale for d in drawn} == {1, 2, 4}
    assert any(d.gain != 1 or d.gamma != 1 for d in drawn) and any(d.cast[0] != d.cast[2] for d in drawn)
    assert any(d == Degradation() for d in drawn)  # some clean samples: leave good photos alone
    only_noise = [random_degradation(gen, ("noise",)) for _ in range(100)]
    assert all(d.blur_sigma == 0 and d.scale == 1 and d.jpeg_quality is None and d.gain == 1 for d in only_noise)
    with pytest.raises(ValueError, match="subset"):
        random_degradation(gen, ("sharpen",))


@pytest.mark.parametrize("sigma", [15.0, 25.0])
def test_noise_has_the_asked_standard_deviation_in_255_units(sigma):
    x = mid_grey(128, 128)
    noisy = degrade.add_noise(x, sigma, torch.Generator().manual_seed(0))
    residual = (noisy - x) * 255
    assert float(residual.std()) == pytest.approx(sigma, rel=0.03)
    assert abs(float(residual.mean())) < 0.3


def test_blur_keeps_flat_areas_and_spreads_a_point_by_sigma():
    assert torch.allclose(degrade.gaussian_blur(mid_grey(), 1.5), mid_grey(), atol=1e-6)
    point = torch.zeros(3, 41, 41)
    point[:, 20, 20] = 1.0
    spread = degrade.gaussian_blur(point, 2.0)[0]
    assert float(spread.sum()) == pytest.approx(1.0, abs=1e-5)
    offsets = torch.arange(41, dtype=torch.float32) - 20
    variance_x = float((spread.sum(0) * offsets**2).sum())
    assert math.sqrt(variance_x) == pytest.approx(2.0, rel=0.02)


def test_jpeg_is_deterministic_and_worse_at_lower_quality():
    image = to_float(photos(1)[0])
    q20, q90 = degrade.jpeg(image, 20), degrade.jpeg(image, 90)
    assert torch.equal(q20, degrade.jpeg(image, 20))
    assert q20.shape == image.shape
    assert float(psnr(q20[None], image[None])) < float(psnr(q90[None], image[None])) - 3


def test_downscale_shrinks_to_uint8_levels_and_the_network_input_is_full_size():
    image = to_float(photos(1)[0])[:, :40, :48]
    for factor in (2, 4):
        d = Degradation(scale=factor)
        small = d.apply(image)
        assert small.shape == (3, 40 // factor, 48 // factor)
        assert torch.equal(small, to_float(to_uint8(small)))
        assert d.network_input(small).shape == image.shape
    with pytest.raises(ValueError, match="divisible"):
        degrade.downscale(image[:, :39], 2)


def test_exposure_and_cast_are_gain_after_gamma_and_the_inverse_undoes_them():
    x = torch.tensor([0.1, 0.36, 0.6]).view(1, 3, 1).expand(3, 3, 1).contiguous()
    under = Degradation(gain=0.5, gamma=2.0).apply(x)
    assert under[0, :, 0].tolist() == pytest.approx([round(0.5 * v * v * 255) / 255 for v in (0.1, 0.36, 0.6)])
    assert float(Degradation(gain=3.0).apply(x).max()) == 1.0  # over-exposure clips
    cast = Degradation(cast=(1.2, 1.0, 0.5)).apply(mid_grey(4, 4))
    assert cast[:, 0, 0].tolist() == pytest.approx([round(0.6 * 255) / 255, round(0.5 * 255) / 255, round(0.25 * 255) / 255])
    for d in (NAMED["underexposed"], NAMED["colourcast"], Degradation(gain=0.7, gamma=1.3, cast=(0.9, 1, 1.1))):
        clean = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.7 + 0.05
        degraded = degrade.tone(clean, d.tone_gains, d.gamma)
        assert torch.allclose(apply_tone(degraded, d.inverse_tone()[None]), clean, atol=1e-4)


def test_every_named_degradation_changes_a_photo():
    image = to_float(photos(1)[0])[:, :40, :48]
    for name, d in NAMED.items():
        out = d.network_input(d.apply(image, torch.Generator().manual_seed(0)))
        assert out.shape == image.shape, name
        assert float((out - image).abs().mean()) > 0.005, name


# ---- metrics and objective --------------------------------------------------------------------------------

def test_psnr_and_ssim_match_hand_values():
    x = torch.full((1, 3, 16, 16), 0.5)
    assert float(psnr(x + 0.1, x)) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6)
    # Flat images: only the luminance term is left, (2ab + C1) / (a^2 + b^2 + C1).
    c1 = 0.01**2
    expected = (2 * 0.5 * 0.3 + c1) / (0.25 + 0.09 + c1)
    flat = torch.full((1, 3, 16, 16), 0.3, dtype=torch.float64)
    assert float(ssim(flat, x.double())) == pytest.approx(expected, rel=1e-9)
    image = to_float(photos(1)[0])[None]
    light = degrade.add_noise(image, 5, torch.Generator().manual_seed(0))
    heavy = degrade.add_noise(image, 25, torch.Generator().manual_seed(0))
    assert 1 > float(ssim(light, image)) > float(ssim(heavy, image))


# ---- config and network -----------------------------------------------------------------------------------

def test_config_round_trips_and_refuses_bad_values():
    config = tiny(levels=2, degradations=["noise", "jpeg"])
    assert RestorationConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        RestorationConfig.from_dict({**config.to_dict(), "depth": 3})
    with pytest.raises(ValueError, match="crop_size"):
        tiny(crop_size=36)  # not a multiple of the alignment 8
    with pytest.raises(ValueError, match="degradations"):
        tiny(degradations=["noise", "noise"])


@pytest.mark.parametrize("levels,blocks", [(3, 1), (2, 2)])
def test_receptive_field_is_the_networks_own(levels, blocks):
    """Probe: with positive weights and no biases every connection carries signal, so an input impulse reaches
    exactly the outputs that depend on it."""
    config = tiny(levels=levels, blocks=blocks)
    net = LocalNet(config)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.abs() + 0.01) if p.dim() > 1 else p.zero_()
    left, right = receptive_field(config)
    align, size = config.alignment, 2 * max(left, right) + 6 * config.alignment
    size -= size % align
    seen_left = seen_right = 0
    for offset in range(align):  # every position within the network's grid
        x = torch.zeros(1, 3, size, size)
        centre = size // 2 - (size // 2) % align + offset
        x[0, :, centre, centre] = 1.0
        with torch.no_grad():
            reached = (net(x, x) - x).abs().sum(dim=(0, 1, 2)).nonzero().flatten()
        seen_left = max(seen_left, int(reached.max()) - centre)
        seen_right = max(seen_right, centre - int(reached.min()))
    assert (seen_left, seen_right) == (left, right)
    assert halo(config) % align == 0 and halo(config) >= max(left, right)


def test_untrained_model_is_the_identity():
    model = RestorationModel(tiny())
    x = torch.rand(2, 3, 32, 48) * 0.99 + 0.01  # the tone curve lifts values below 1e-4 (see TONE_EPS)
    restored, tone = model(x, torch.rand(5, 3, 64, 64))
    assert torch.equal(tone, torch.zeros(5, 4))
    assert torch.allclose(restored, x, atol=1e-6)


# ---- trainer and checkpoints ------------------------------------------------------------------------------

def test_photos_are_checked_and_converted():
    with pytest.raises(ValueError, match="at least 32 x 32"):
        check_photos([torch.zeros(3, 31, 64, dtype=torch.uint8)], 32)
    with pytest.raises(ValueError, match="uint8"):
        check_photos([torch.zeros(3, 40, 40)], 32)
    stacked = torch.zeros(2, 3, 40, 40, dtype=torch.uint8)
    assert len(check_photos(stacked, 32)) == 2
    rgba = Image.new("RGBA", (2000, 100), (255, 0, 0, 0))
    small = Image.new("RGB", (20, 30), (1, 2, 3))
    [tensor] = photo_tensors([rgba, small], max_side=1000, min_side=32)
    assert tuple(tensor.shape) == (3, 50, 1000) and tensor.dtype == torch.uint8
    assert tensor[:, 0, 0].tolist() == [255, 255, 255]  # transparent -> white


def test_trainer_lowers_the_loss_on_a_fixed_batch():
    trainer = Trainer(tiny(width=16, degradations=["noise"]), photos(), batch_size=8, lr=2e-3, tone_batch=0, seed=0)
    objective = trainer.objective
    batch = objective.sample_batch(torch.Generator().manual_seed(123))
    with torch.no_grad():
        before = float(objective.terms(batch)["pixel"])
    summary = trainer.fit(60, log_every=20)
    with torch.no_grad():
        after = float(objective.terms(batch)["pixel"])
    assert summary["steps_done"] == 60 and trainer.history["step"] == [20, 40, 60]
    assert after < 0.95 * before, (before, after)


def test_the_tone_network_learns_the_inverse_curve():
    config = tiny(degradations=["exposure", "colour"])
    trainer = Trainer(config, photos(), batch_size=1, lr=2e-3, tone_batch=32, seed=0)
    objective = trainer.objective
    batch = objective.sample_batch(torch.Generator().manual_seed(123))
    assert batch.previews.shape == batch.clean_previews.shape == (1 + 32, 3, 64, 64)
    assert not torch.equal(batch.previews, batch.clean_previews)
    with torch.no_grad():
        before = float(objective.terms(batch)["tone"])
    trainer.fit(50)
    with torch.no_grad():
        after = float(objective.terms(batch)["tone"])
    assert after < 0.8 * before, (before, after)


# ---- restorer: tiling, sizes, alpha ------------------------------------------------------------------------

def scrambled_restorer(config=None, seed=0):
    """A Restorer whose networks have random non-zero output layers (untrained ones are the identity, which
    any tiling would reproduce)."""
    config = config or tiny()
    model = RestorationModel(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in (model.local.tail, model.tone.out):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 0.05)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen) * 0.05)
    return Restorer(config, model, package_version="test", step=0, device=torch.device("cpu"))


def test_tiles_reproduce_the_untiled_result_on_odd_sizes():
    restorer = scrambled_restorer()
    image = torch.rand(1, 3, 301, 517, generator=torch.Generator().manual_seed(1))
    whole = restorer.restore_tensor(image, tile=1024)
    tiled = restorer.restore_tensor(image, tile=64)  # 5 x 9 tiles, overlap = halo
    assert tiled.shape == whole.shape == image.shape
    assert float((tiled - whole).abs().max()) <= 1e-5
    assert float((whole - image).abs().mean()) > 1e-3  # the network does change the photo
    # Without overlap the tiles' cut edges show: the comparison above can fail.
    seams = restorer.restore_tensor(image, tile=64, overlap=0)
    assert float((seams - whole).abs().max()) > 1e-3
    with pytest.raises(ValueError, match="multiple of 8"):
        restorer.restore_tensor(image, tile=60)


def test_enhance_sizes_modes_and_alpha():
    restorer = scrambled_restorer()
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (23, 37, 3), dtype=np.uint8))
    for upscale in (1, 2, 4):
        out = restorer.enhance(rgb, upscale=upscale)
        assert out.mode == "RGB" and out.size == (37 * upscale, 23 * upscale)
    rgba = rgb.copy()
    alpha = Image.fromarray(np.random.default_rng(1).integers(0, 256, (23, 37), dtype=np.uint8))
    rgba.putalpha(alpha)
    same = restorer.enhance(rgba)
    assert same.mode == "RGBA" and np.array_equal(np.asarray(same.getchannel("A")), np.asarray(alpha))
    assert np.array_equal(np.asarray(same.convert("RGB")), np.asarray(restorer.enhance(rgb)))
    big = restorer.enhance(rgba, upscale=2)
    assert big.mode == "RGBA" and big.size == (74, 46)
    assert np.array_equal(np.asarray(big.getchannel("A")), np.asarray(alpha.resize((74, 46), Image.Resampling.BICUBIC)))
    with pytest.raises(ValueError, match="upscale"):
        restorer.enhance(rgb, upscale=3)


def test_an_untrained_checkpoint_gives_the_photo_back():
    trainer = Trainer(tiny(), photos(), batch_size=2, tone_batch=0)
    buffer = io.BytesIO()
    trainer.save(buffer)
    restorer = Restorer.from_checkpoint(io.BytesIO(buffer.getvalue()))
    photo = Image.fromarray(np.random.default_rng(2).integers(1, 256, (45, 61, 3), dtype=np.uint8))
    assert np.array_equal(pixels([restorer.enhance(photo)]), pixels([photo]))


# ---- validation on held-out photos ------------------------------------------------------------------------

def test_validation_scores_the_untouched_photo_as_the_baseline_and_catches_a_harmful_restorer():
    from mlcore.restoration.tasks import TASKS
    from mlcore.restoration.validation import validate

    held_out = [to_float(p) for p in photos(3, seed=5)]
    identity = Restorer(tiny(), RestorationModel(tiny()), package_version="test", step=0, device=torch.device("cpu"))
    neutral = validate(identity, held_out, crop=32)
    assert set(neutral["per_degradation"]) == {d for t in TASKS.values() for d in t.degradations}
    assert set(neutral["tasks"]) == set(TASKS) and neutral["photos"] == 3 and neutral["crop"] == 32
    # An untrained restorer gives the (enlarged) input back: no gain and no loss, on every degradation; a tie
    # with the untouched photo never chooses the model.
    assert all(abs(v["model"] - v["unchanged"]) < 1e-3 for v in neutral["per_degradation"].values()), neutral
    assert all(c["method"] != "model" for c in neutral["tasks"].values()), neutral["tasks"]
    assert neutral["per_degradation"]["noise25"]["unchanged"] < neutral["per_degradation"]["noise15"]["unchanged"]
    scrambled = scrambled_restorer()
    harmful = validate(scrambled, held_out, crop=32)
    assert harmful["mean_gain_db"] < -1.0, harmful
    assert all(c["method"] != "model" and c["model_margin_db"] < 0 for c in harmful["tasks"].values()), harmful["tasks"]
    assert validate(scrambled, held_out, crop=32) == harmful, "seeded degradations: the same numbers again"
