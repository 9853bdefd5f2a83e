"""The "vae" and "cvae" kinds (mlcore.vae): objective maths, networks, what the grid and the sampler do with
the class, encoding and learning. What every kind shares is in test_model_contract.py."""
import io
import math

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import pytest
import torch

from mlcore.training import Trainer
from mlcore.vae.config import CVAEConfig, VAEConfig, config_from_dict
from mlcore.vae.networks import VAE
from mlcore.vae.objective import (
    elbo_terms,
    gaussian_nll,
    kl_divergence,
    kl_weight,
    reparameterize,
)
from mlcore.vae.sampler import Sampler

from .synthetic import dataset, pixels

CLASSES = ["dress", "hat"]


def tiny(kind="vae", size=64, **overrides):
    cls = CVAEConfig if kind == "cvae" else VAEConfig
    return cls(classes=CLASSES, image_size=size, latent_dim=8, enc_width=4, dec_width=4, **overrides)



# ---- objectives -------------------------------------------------------------------------------------------

def test_kl_matches_hand_computation_and_is_zero_at_the_prior():
    mu = torch.tensor([[1.0, 0.5], [0.0, -2.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [math.log(0.5), 0.0]])
    expected_0 = -0.5 * ((1 + 0 - 1 - 1) + (1 + math.log(2.0) - 0.25 - 2))
    expected_1 = -0.5 * ((1 + math.log(0.5) - 0 - 0.5) + (1 + 0 - 4 - 1))
    assert kl_divergence(mu, logvar).tolist() == pytest.approx([expected_0, expected_1], rel=1e-6)
    assert kl_divergence(torch.zeros(3, 5), torch.zeros(3, 5)).tolist() == [0.0, 0.0, 0.0]
    assert (kl_divergence(torch.randn(4, 6), torch.randn(4, 6)) >= 0).all()


def test_elbo_terms_sum_per_image_then_mean_over_batch():
    target = torch.stack([torch.ones(3, 2, 2), torch.full((3, 2, 2), 2.0)])  # 12 values per image
    reconstruction = torch.zeros_like(target)
    sigma = 0.5  # 1 / (2 sigma^2) = 2
    assert gaussian_nll(reconstruction, target, sigma).tolist() == pytest.approx([12 * 1 * 2, 12 * 4 * 2])
    mu = torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])  # KL per image = mu^2 / 2 = 0.5, 2.0
    logvar = torch.zeros(2, 3)
    terms = elbo_terms(reconstruction, target, mu, logvar, sigma=sigma, kl_scale=0.5)
    assert float(terms["recon"]) == pytest.approx((24 + 96) / 2)
    assert float(terms["kl"]) == pytest.approx((0.5 + 2.0) / 2)
    assert float(terms["loss"]) == pytest.approx(60 + 0.5 * 1.25)


def test_reparameterisation_and_kl_warmup():
    mu, logvar, eps = torch.tensor([[1.0, -1.0]]), torch.tensor([[0.0, math.log(4.0)]]), torch.tensor([[0.5, 0.5]])
    assert reparameterize(mu, logvar, eps)[0].tolist() == pytest.approx([1.5, 0.0])
    assert kl_weight(0) == 1.0 and kl_weight(5, beta=0.25) == 0.25
    assert kl_weight(0, warmup_steps=4) == 0.25 and kl_weight(1, 2.0, 4) == 1.0 and kl_weight(99, 2.0, 4) == 2.0


# ---- config and networks ----------------------------------------------------------------------------------

def test_config_round_trip_and_validation():
    config = tiny("cvae", beta=0.5)
    assert config_from_dict(config.to_dict()) == config and config.num_classes == 2 and config.conditional
    assert VAEConfig.from_dict(tiny().to_dict()).kind == "vae"
    with pytest.raises(ValueError, match="unknown"):
        VAEConfig.from_dict({**tiny().to_dict(), "z_dim": 3})
    with pytest.raises(ValueError):
        VAEConfig(classes=CLASSES, image_size=96)
    with pytest.raises(ValueError):
        VAEConfig(classes=[])


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_network_shapes_and_range(kind, size):
    config = tiny(kind, size)
    model = VAE(config)
    x = torch.rand(3, 3, size, size) * 2 - 1
    labels = torch.tensor([0, 1, 1])
    mu, logvar = model.encoder(x, labels)
    assert mu.shape == logvar.shape == (3, config.latent_dim)
    out = model.decoder(torch.randn(3, config.latent_dim) * 10, labels)
    assert out.shape == (3, 3, size, size)
    assert out.min() >= -1 and out.max() <= 1


# ---- trainer ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_sample_grid_rows(kind):
    images, labels = dataset()
    grid = Trainer(tiny(kind), images, labels, batch_size=4).sample_grid(3)
    assert grid.shape == (2 * 3, 3, 64, 64) and grid.min() >= -1 and grid.max() <= 1
    # cvae: each class row reuses the same noise; vae: all samples differ.
    assert not torch.equal(grid[0], grid[1])
    assert not torch.equal(grid[0], grid[3])


def test_loss_decreases_on_a_trivial_dataset():
    images, labels = dataset()
    trainer = Trainer(tiny("cvae"), images, labels, batch_size=8, lr=2e-3)
    trainer.fit(60, log_every=10)
    loss, recon = trainer.history["loss"], trainer.history["recon"]
    assert len(loss) == 6 and all(math.isfinite(v) for v in loss)
    assert loss[-1] < 0.5 * loss[0] and recon[-1] < 0.5 * recon[0]


# ---- checkpoints and sampler ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoints():
    images, labels = dataset()
    out = {}
    for kind in ("vae", "cvae"):
        trainer = Trainer(tiny(kind), images, labels, batch_size=4, seed=0)
        trainer.fit(4)
        buffer = io.BytesIO()
        trainer.save(buffer)
        out[kind] = (trainer, buffer.getvalue())
    return out


@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_sampler_decodes_the_trainers_grid(checkpoints, kind):
    trainer, data = checkpoints[kind]
    a = Sampler.from_checkpoint(io.BytesIO(data))
    z, grid_labels = trainer.objective.grid_inputs(2)
    assert torch.equal(a.decode(z, grid_labels), trainer.sample_grid(2))
    imgs = a.generate("dress", 2, seed=5)
    assert len(imgs) == 2 and imgs[0].size == (64, 64) and imgs[0].mode == "RGB"


def test_vae_ignores_the_class_but_validates_it(checkpoints):
    sampler = Sampler.from_checkpoint(checkpoints["vae"][1])
    assert (pixels(sampler.generate("hat", 2, 3)) == pixels(sampler.generate("dress", 2, 3))).all()
    with pytest.raises(KeyError):
        sampler.generate_seeds("shoe", [1])
    with pytest.raises(KeyError):
        sampler.score(sampler.generate("hat", 1, 0), "shoe")


@pytest.mark.parametrize("kind", ["vae", "cvae"])
def test_encode_and_score(checkpoints, kind):
    sampler = Sampler.from_checkpoint(checkpoints[kind][1])
    images = sampler.generate("dress", 3, seed=1)
    mu = sampler.encode(images, "dress")
    assert mu.shape == (3, 8) and mu.dtype == torch.float32 and torch.isfinite(mu).all()
    assert torch.equal(sampler.encode(images), mu)  # class read from the generated images
    scores = sampler.score(images, "dress")
    assert len(scores) == 3 and all(0.0 <= s <= 1.0 for s in scores)
    from PIL import Image

    plain = [Image.new("RGB", (80, 50), (10, 200, 10))]
    assert sampler.score(plain)[0] == pytest.approx(max(sampler.score(plain, c)[0] for c in CLASSES)) \
        if kind == "cvae" else 0.0 <= sampler.score(plain)[0] <= 1.0
    if kind == "cvae":
        with pytest.raises(ValueError, match="class"):
            sampler.encode(plain)
    else:
        assert sampler.encode(plain).shape == (1, 8)


