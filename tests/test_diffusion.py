"""The "ddpm" kind (mlcore.diffusion): schedule and loss maths, DDIM, networks, its grid, guidance and score.
What every kind shares is in test_model_contract.py."""
import io
import math

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import pytest
import torch

from mlcore.checkpoint import load_checkpoint
from mlcore.diffusion.config import DiffusionConfig
from mlcore.diffusion.networks import UNet
from mlcore.diffusion.objective import (
    cosine_alphas_cumprod,
    ddim_sample,
    ddim_timesteps,
    denoising_error,
    epsilon_mse,
    guided_epsilon,
    loss_terms,
    q_sample,
)
from mlcore.diffusion.sampler import Sampler
from mlcore.seeding import sample_noise
from mlcore.training import Trainer

from .synthetic import dataset

CLASSES = ["dress", "hat"]


def tiny(size=64, **overrides):
    options = {"width": 8, "sample_steps": 4, **overrides}
    return DiffusionConfig(classes=CLASSES, image_size=size, **options)



# ---- objectives -------------------------------------------------------------------------------------------

def test_cosine_schedule():
    abar = cosine_alphas_cumprod(1000)
    assert abar.shape == (1000,) and abar.dtype == torch.float64
    assert (abar[1:] < abar[:-1]).all() and 0.999 < float(abar[0]) < 1.0 and float(abar[-1]) < 1e-6
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert float(abar[499]) == pytest.approx(f(500) / f(0), rel=1e-9)  # abar_t = f(t+1) / f(0) while unclipped
    betas = 1 - abar[1:] / abar[:-1]
    assert float(betas.max()) <= 0.999 + 1e-12


def test_loss_matches_hand_computation():
    abar = torch.tensor([0.64, 0.36], dtype=torch.float64)  # sqrt: 0.8 / 0.6 and 0.6 / 0.8
    x0 = torch.tensor([[[[1.0, -1.0]]], [[[0.5, 0.0]]]])  # 2 images of 1 x 1 x 2 values
    noise = torch.tensor([[[[0.5, 2.0]]], [[[-1.0, 1.0]]]])
    t = torch.tensor([0, 1])
    x_t = q_sample(x0, t, noise, abar)
    expected_x_t = [[0.8 * 1 + 0.6 * 0.5, 0.8 * -1 + 0.6 * 2], [0.6 * 0.5 + 0.8 * -1, 0.6 * 0 + 0.8 * 1]]
    assert x_t.flatten(1).tolist() == [pytest.approx(row) for row in expected_x_t]

    seen = {}

    def eps_model(x, steps, labels):  # predicts half its input
        seen.update(steps=steps, labels=labels)
        return 0.5 * x

    labels = torch.tensor([1, 0])
    terms = loss_terms(eps_model, x0, labels, t, noise, abar)
    errors = [0.5 * v - n for row, nrow in zip(expected_x_t, [[0.5, 2.0], [-1.0, 1.0]]) for v, n in zip(row, nrow)]
    assert float(terms["loss"]) == pytest.approx(sum(e * e for e in errors) / 4)  # mean over all 4 values
    assert torch.equal(seen["steps"], t) and torch.equal(seen["labels"], labels)
    assert float(epsilon_mse(torch.zeros(3, 3, 4, 4), torch.ones(3, 3, 4, 4))) == 1.0
    # Per-image error of a model that predicts 0: the mean square of the fixed noise, averaged over timesteps.
    fixed = torch.stack([torch.full((1, 1, 2), 1.0), torch.full((1, 1, 2), 3.0)])
    errors = denoising_error(lambda x, t, y: torch.zeros_like(x), x0, labels, [0, 1], fixed, abar)
    assert errors.tolist() == pytest.approx([(1 + 9) / 2, (1 + 9) / 2])


def test_guidance_mixes_one_batched_forward():
    calls = []

    def eps_model(x, t, labels):  # class c predicts c everywhere; the null class is 5
        calls.append(len(x))
        return labels.float()[:, None, None, None].expand_as(x).clone()

    x, t, labels = torch.zeros(2, 3, 2, 2), torch.tensor([3, 3]), torch.tensor([1, 2])
    eps = guided_epsilon(eps_model, x, t, labels, null_class=5, guidance=2.0)
    assert calls == [4]  # one forward over [class, null]
    assert eps[:, 0, 0, 0].tolist() == [5 + 2 * (1 - 5), 5 + 2 * (2 - 5)]
    assert guided_epsilon(eps_model, x, t, labels, 5, 1.0)[:, 0, 0, 0].tolist() == [1.0, 2.0]
    assert guided_epsilon(eps_model, x, t, labels, 5, 0.0)[:, 0, 0, 0].tolist() == [5.0, 5.0]
    assert calls == [4, 2, 2]


def test_ddim_with_the_true_noise_recovers_the_image():
    abar = cosine_alphas_cumprod(1000)
    assert ddim_timesteps(1000, 4) == [750, 500, 250, 0] and ddim_timesteps(1000, 50)[:2] == [980, 960]
    assert ddim_timesteps(1000, 3) == [666, 333, 0] and ddim_timesteps(10, 1) == [0]
    assert len(set(ddim_timesteps(1000, 1000))) == 1000
    x0 = torch.rand(2, 3, 4, 4) * 1.6 - 0.8
    x_T = torch.randn(2, 3, 4, 4)

    def oracle(x, t):  # the noise that makes x from x0 at t
        a = float(abar[int(t[0])])
        return (x - math.sqrt(a) * x0) / math.sqrt(1 - a)

    out = ddim_sample(oracle, x_T, abar, ddim_timesteps(1000, 5))
    assert torch.allclose(out, x0, atol=1e-5)
    wild = ddim_sample(lambda x, t: -100 * x, x_T * 10, abar, [999, 0])
    assert wild.min() >= -1 and wild.max() <= 1


# ---- config and networks ----------------------------------------------------------------------------------

def test_config_round_trip_and_validation():
    config = tiny(guidance=3, cond_drop=0.2)
    assert DiffusionConfig.from_dict(config.to_dict()) == config and config.guidance == 3.0
    assert config.num_classes == 2 and config.null_class == 2 and config.z_dim == 3 * 64 * 64
    assert config.kind == "ddpm" and tiny(128).z_dim == 3 * 128 * 128
    with pytest.raises(ValueError, match="unknown"):
        DiffusionConfig.from_dict({**config.to_dict(), "z_dim": 3})
    with pytest.raises(ValueError, match="classes"):
        DiffusionConfig.from_dict({"image_size": 64})
    bad = [
        {"image_size": 96}, {"width": 0}, {"width": 8.0}, {"timesteps": 1}, {"schedule": "linear"},
        {"sample_steps": 0}, {"sample_steps": 1001}, {"guidance": -1.0}, {"guidance": "2"},
        {"cond_drop": 1.5}, {"cond_drop": 0.0}, {"kind": "vae"},
    ]
    for options in bad:
        with pytest.raises(ValueError):
            DiffusionConfig(classes=CLASSES, **options)
    assert DiffusionConfig(classes=CLASSES, cond_drop=0.0, guidance=1.0).cond_drop == 0.0
    for classes in ([], ["a", "a"], [""]):
        with pytest.raises(ValueError):
            DiffusionConfig(classes=classes)


@pytest.mark.parametrize("size", [64, 128])
def test_network_shapes_and_initial_prediction(size):
    model = UNet(tiny(size))
    x = torch.randn(3, 3, size, size)
    out = model(x, torch.tensor([0, 500, 999]), torch.tensor([0, 1, 2]))  # 2 is the null class
    assert out.shape == (3, 3, size, size) and out.dtype == torch.float32
    assert torch.equal(out, torch.zeros_like(out))  # zero-initialised output: eps = 0 before training
    assert model.class_embed.num_embeddings == 3


# ---- trainer ----------------------------------------------------------------------------------------------

def test_grid_rows_start_from_the_same_noise_and_the_loss_is_positive():
    images, labels = dataset()
    a = Trainer(tiny(), images, labels, batch_size=4, seed=3, lr=1e-3)
    a.fit(3, log_every=2)
    assert all(math.isfinite(v) and v > 0 for v in a.history["loss"])
    z, grid_labels = a.objective.grid_inputs(3)
    assert z.shape == (6, 3 * 64 * 64) and grid_labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(z[:3], z[3:])  # every class row starts from the same noise


def test_128_px_trains_a_step():
    images, labels = dataset(size=128, count=2)
    trainer = Trainer(tiny(128), images, labels, batch_size=2)
    summary = trainer.fit(1)
    assert trainer.step == 1 and math.isfinite(summary["loss"])


def test_trainer_refuses_bad_input():
    images, labels = dataset()
    with pytest.raises(ValueError, match="DiffusionConfig"):
        Trainer(object(), images, labels)
    with pytest.raises(ValueError, match="uint8"):
        Trainer(tiny(128), images, labels)
    with pytest.raises(ValueError, match="labels"):
        Trainer(tiny(), images, labels + 5)


# ---- checkpoints and sampler ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint():
    images, labels = dataset()
    # A high learning rate so a few steps move the zero-initialised layers well away from zero.
    trainer = Trainer(tiny(), images, labels, batch_size=4, seed=0, lr=1e-2, ema_decay=0.5)
    trainer.fit(4)
    buffer = io.BytesIO()
    trainer.save(buffer)
    return trainer, buffer.getvalue()


def test_sampler_takes_the_configs_sampling_and_draws_the_trainers_grid(checkpoint):
    trainer, data = checkpoint
    ckpt = load_checkpoint(data)  # weights_only=True
    assert {"model", "model_ema", "optimizer", "rng"} <= set(ckpt)
    a = Sampler.from_checkpoint(io.BytesIO(data))
    assert a.sample_steps == 4 and a.guidance == 2.0
    z, grid_labels = trainer.objective.grid_inputs(2)
    assert torch.equal(a._forward(z, grid_labels), trainer.sample_grid(2))
    # DDIM from the seeded x_T: one image alone is the same as in a batch, up to float rounding.
    seeds = [7, 8, 100, 7]
    batched = a._forward(torch.cat([sample_noise(1, a.config.z_dim, s) for s in seeds]), torch.ones(4, dtype=torch.long))
    for i, seed in enumerate(seeds):
        assert torch.allclose(batched[i], a.generate_tensor([1], seed)[0], atol=1e-5)
    out = a.generate_tensor([0, 1, 1], seed=3)
    assert out.shape == (3, 3, 64, 64) and out.dtype == torch.float32 and out.min() >= -1 and out.max() <= 1


def test_guidance_changes_a_conditional_model(checkpoint):
    sampler = Sampler.from_checkpoint(checkpoint[1])
    guided = sampler.generate_tensor([0, 1], seed=2)
    sampler.guidance = 0.0
    unconditional = sampler.generate_tensor([0, 1], seed=2)
    assert (guided - unconditional).abs().max() > 1e-3
    # Unconditional sampling ignores the class: both rows start from different noise, so compare per seed.
    assert torch.allclose(sampler.generate_tensor([0], 2), sampler.generate_tensor([1], 2), atol=1e-6)
    assert not torch.allclose(
        Sampler.from_checkpoint(checkpoint[1], guidance=1.0).generate_tensor([0], 2),
        Sampler.from_checkpoint(checkpoint[1], guidance=1.0).generate_tensor([1], 2),
        atol=1e-3,
    )


def test_score_of_an_unknown_class_is_the_best_class(checkpoint):
    sampler = Sampler.from_checkpoint(checkpoint[1])
    images = sampler.generate("dress", 2, seed=1)
    assert sampler.score(images, "dress") == sampler.score(images, "dress")  # fixed noise: repeatable
    from PIL import Image

    plain = [Image.new("RGB", (80, 50), (10, 200, 10))]
    assert sampler.score(plain)[0] == pytest.approx(max(sampler.score(plain, c)[0] for c in CLASSES))
    with pytest.raises(KeyError):
        sampler.score(images, "shoe")


