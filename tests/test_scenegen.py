"""The scene generator ("scenes"): its config, data, networks and losses, that it learns a trivially learnable
scene set, seeded sampling, and the empty backdrops it learns from (``mlcore.scenes.backdrops``).

The contract every kind keeps (train, save, resume, load) is tests/test_model_contract.py's."""
import io

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import numpy as np
import pytest
import torch
from PIL import Image

from mlcore.gan import objective as gan_objective
from mlcore.scenegen.config import SceneGANConfig
from mlcore.scenegen.data import MIN_PHOTOS, crops_per_photo, training_set
from mlcore.scenegen.networks import Discriminator, Generator
from mlcore.scenegen.objective import SceneGANObjective
from mlcore.scenegen.sampler import SceneGenerator
from mlcore.scenes.backdrops import backdrop_crops, empty_backdrop, product_hole
from mlcore.training import Trainer

from .synthetic import one_thread  # noqa: F401  (a fixture)

SIZE = 32
TINY = {"image_size": SIZE, "z_dim": 16, "g_width": 8, "d_width": 8}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny networks: one torch thread (``synthetic.one_thread``)."""


# ---- config and data ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    {"image_size": 48}, {"image_size": 16}, {"image_size": True}, {"z_dim": 1}, {"g_width": 0}, {"d_width": 1.5},
    {"loss": "wasserstein"}, {"augment": "color,blur"}, {"recon_weight": -1.0}, {"kind": "cgan"},
])
def test_config_refuses_what_it_cannot_build(bad):
    with pytest.raises(ValueError):
        SceneGANConfig(**bad)


def test_config_round_trips_through_plain_data():
    config = SceneGANConfig(image_size=64, loss="nonsaturating", augment="translation", recon_weight=2)
    assert config.kind == "scenes" and config.recon_weight == 2.0 and SceneGANConfig().image_size == 256
    assert SceneGANConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown"):
        SceneGANConfig.from_dict({**config.to_dict(), "width": 3})


def photos(count, size=(80, 60)):
    """Plain photos with a colour gradient, a different tint each."""
    out = []
    for i in range(count):
        rows = np.linspace(0, 1, size[1])[:, None, None]
        colour = np.array([40 + 15 * i, 120, 200 - 10 * i]) * (0.6 + 0.4 * rows)
        out.append(Image.fromarray(np.broadcast_to(colour, (size[1], size[0], 3)).clip(0, 255).astype(np.uint8)))
    return out


def test_training_set_makes_several_seeded_crops_per_photo_of_a_small_set():
    config, (images,) = training_set(photos(MIN_PHOTOS), image_size=SIZE, g_width=4)
    per_photo = crops_per_photo(MIN_PHOTOS)
    assert per_photo > 1 and config.g_width == 4 and config.image_size == SIZE
    assert images.dtype == torch.uint8 and images.shape == (MIN_PHOTOS * per_photo, 3, SIZE, SIZE)
    # The first crop of each photo is its centre square; the others differ from it; all reproducible.
    assert not torch.equal(images[0], images[1])
    assert torch.equal(images, training_set(photos(MIN_PHOTOS), image_size=SIZE)[1][0])
    assert crops_per_photo(1000) == 1
    _, (two,) = training_set(photos(MIN_PHOTOS), image_size=SIZE, crops=2)
    assert len(two) == 2 * MIN_PHOTOS


def test_training_set_refuses_too_few_usable_photos_and_says_how_many_it_needs():
    with pytest.raises(ValueError, match=f"at least {MIN_PHOTOS} photos.*got {MIN_PHOTOS - 1} usable"):
        training_set(photos(MIN_PHOTOS - 1), image_size=SIZE)
    # Photos far smaller than the model's side are not usable (they would teach blur).
    tiny = photos(2, size=(10, 10))
    with pytest.raises(ValueError, match=f"got {MIN_PHOTOS - 2} usable of {MIN_PHOTOS}"):
        training_set(photos(MIN_PHOTOS - 2) + tiny, image_size=SIZE)
    assert len(training_set(photos(3), image_size=SIZE, min_photos=3, crops=1)[1][0]) == 3


# ---- networks and losses ------------------------------------------------------------------------------------

def test_networks_at_256_px_gate_fine_levels_and_rebuild_from_discriminator_features():
    config = SceneGANConfig(g_width=4, d_width=4, z_dim=8)
    generator, discriminator = Generator(config).eval(), Discriminator(config)
    # Skip-layer excitation on the three finest feature levels (32, 64, 128) from 4, 8, 16.
    assert {generator.sides[i]: generator.sides[s] for i, s in generator.sle_sources.items()} == {32: 4, 64: 8, 128: 16}
    image = generator(torch.randn(2, 8))
    assert image.shape == (2, 3, 256, 256) and image.abs().max() <= 1
    logits, final, middle = discriminator.features(image)
    assert logits.shape == (2, 25) and final.shape[-1] == 8 and middle.shape[-1] == 16
    whole, part = discriminator.reconstruct(final, middle, quarter=3)
    assert whole.shape == part.shape == (2, 3, 64, 64)
    plain = Discriminator(SceneGANConfig(g_width=4, d_width=4, recon_weight=0))
    assert not any("decoder" in key for key in plain.state_dict())
    with pytest.raises(ValueError, match="reconstruction"):
        plain.reconstruct(final, middle, 0)


@pytest.mark.parametrize("loss", ["hinge", "nonsaturating"])
def test_objective_uses_the_gan_losses_on_raw_logits(loss):
    config, data = training_set(photos(MIN_PHOTOS), loss=loss, **TINY)
    objective = Trainer(config, *data, batch_size=4).objective
    assert isinstance(objective, SceneGANObjective)
    assert (objective.d_loss_fn, objective.g_loss_fn) == gan_objective.LOSSES[loss]
    # Logits, never probabilities: nothing squashes the discriminator's output.
    logits = objective.discriminator(torch.randn(4, 3, SIZE, SIZE) * 50)
    assert logits.shape == (4, 25) and (logits.min() < 0 or logits.max() > 1)
    with pytest.raises(ValueError, match="uint8 N x 3 x 32 x 32"):
        Trainer(config, data[0].float(), batch_size=4)


# ---- learning ----------------------------------------------------------------------------------------------

def two_tone_scenes(count: int = 64, seed: int = 0) -> torch.Tensor:
    """A trivially learnable scene set: a wall over a floor, each a flat colour with a soft vertical gradient,
    meeting at a random height (30-70 % down)."""
    gen = torch.Generator().manual_seed(seed)
    rows = torch.arange(SIZE, dtype=torch.float32)[:, None]
    wall, floor = torch.tensor([200.0, 190.0, 170.0]), torch.tensor([90.0, 60.0, 40.0])
    images = torch.empty(count, 3, SIZE, SIZE, dtype=torch.uint8)
    for i in range(count):
        split = int(torch.randint(int(0.3 * SIZE), int(0.7 * SIZE), (), generator=gen))
        shade = 1.0 - 0.3 * rows / SIZE
        image = torch.where(rows < split, wall * shade, floor * shade)  # SIZE x 3
        images[i] = image.t()[:, :, None].expand(3, SIZE, SIZE).round().to(torch.uint8)
    return images


def row_profiles(images: torch.Tensor) -> torch.Tensor:
    """Each image's mean colour per row (N x 3S), in [0, 1]: what a two-tone scene is about."""
    return images.float().div(255.0).mean(dim=3).flatten(1)


def profile_distance(samples: torch.Tensor, real: torch.Tensor) -> float:
    """Mean distance of each sample's row profile to its nearest training profile."""
    return float(torch.cdist(row_profiles(samples), row_profiles(real)).min(dim=1).values.mean())


@pytest.fixture(scope="module")
def trained():
    """A tiny scene GAN trained 150 steps on ``two_tone_scenes``, and its checkpoint."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    config = SceneGANConfig(**TINY, augment="translation")
    images = two_tone_scenes()
    trainer = Trainer(config, images, batch_size=16, seed=0, lr_g=1e-3, lr_d=1e-3, ema_decay=0.99)
    untrained = SceneGenerator.from_checkpoint(_checkpoint(trainer))
    trainer.fit(150, log_every=50)
    checkpoint = _checkpoint(trainer)
    torch.set_num_threads(before)
    return images, untrained, trainer, checkpoint


def _checkpoint(trainer: Trainer) -> bytes:
    buffer = io.BytesIO()
    trainer.save(buffer)
    return buffer.getvalue()


def samples_of(model: SceneGenerator, count: int = 64) -> torch.Tensor:
    return model.backdrop_tensor(count, seed=1).add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def test_scene_gan_learns_a_trivial_scene_set(trained):
    images, untrained, trainer, checkpoint = trained
    model = SceneGenerator.from_checkpoint(checkpoint)
    before, after = profile_distance(samples_of(untrained), images), profile_distance(samples_of(model), images)
    # Measured: 2.4 untrained, 1.8 after 50 steps, 0.8 after 150.
    assert after < 0.5 * before, (before, after)
    # Not one image for every z: the walls meet the floors at different heights (measured: the training set's
    # profiles vary by 0.066 per row, the untrained generator's by 0.020, the trained one's by 0.09).
    assert float(row_profiles(samples_of(model)).std(dim=0).mean()) > 0.04
    assert all(np.isfinite(v) for key in trainer.objective.loss_keys for v in trainer.history[key])


def test_sampling_is_seeded_and_sized(trained):
    model = SceneGenerator.from_checkpoint(trained[3])
    first, again = model.backdrops(3, seed=5), model.backdrops(3, seed=5)
    assert all(img.mode == "RGB" and img.size == (SIZE, SIZE) for img in first)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first, again))
    other = model.backdrops(3, seed=6)
    assert not np.array_equal(np.asarray(first[0]), np.asarray(other[0]))
    # Image i depends on the seed alone, not on how many are drawn with it (up to batched float rounding).
    single = np.asarray(model.backdrops(1, seed=5)[0], dtype=np.int16)
    assert np.abs(single - np.asarray(first[0], dtype=np.int16)).max() <= 1
    wide = model.backdrop((90, 20), seed=5)
    assert wide.mode == "RGB" and wide.size == (90, 20)
    assert np.array_equal(np.asarray(wide), np.asarray(model.backdrop((90, 20), seed=5)))
    with pytest.raises(ValueError, match="count"):
        model.backdrops(0, seed=1)
    with pytest.raises(ValueError, match="size"):
        model.backdrop((0, 10), seed=1)
    assert model.step == 150 and model.config == trained[2].config


# ---- empty backdrops ---------------------------------------------------------------------------------------

PRODUCT = np.array([220, 20, 30])


def product_photo(width: int = 120, height: int = 90, left: int = 70) -> tuple[Image.Image, Image.Image]:
    """A solid red product (with a 1 px darker edge halo) on a noisy green-grey backdrop with a light falloff,
    and its mask (exactly the product, halo excluded, as a segmenter would miss it)."""
    rng = np.random.default_rng(0)
    rows = np.linspace(0, 1, height)[:, None, None]
    photo = np.array([110, 140, 120]) * (1.1 - 0.3 * rows) + rng.normal(0, 8, (height, width, 3))
    photo[20:70, left - 1 : left + 31] = PRODUCT * 0.6
    photo[21:69, left : left + 30] = PRODUCT
    mask = np.zeros((height, width), np.uint8)
    mask[21:69, left : left + 30] = 255
    return Image.fromarray(photo.clip(0, 255).astype(np.uint8)), Image.fromarray(mask, "L")


def test_empty_backdrop_removes_the_product_and_keeps_every_other_pixel():
    photo, mask = product_photo()
    out = empty_backdrop(photo, mask)
    assert out.mode == "RGB" and out.size == photo.size
    hole = product_hole(torch.from_numpy(np.array(mask)).float() / 255).numpy()
    before, after = np.asarray(photo, dtype=np.int16), np.asarray(out, dtype=np.int16)
    assert np.array_equal(before[~hole], after[~hole])
    # The halo is inside the widened hole too: no pixel there is near the product's colour or its halo's.
    filled = after[hole]
    assert np.abs(filled - PRODUCT).sum(1).min() > 150 and np.abs(filled - PRODUCT * 0.6).sum(1).min() > 80
    backdrop = before[~hole]
    assert np.abs(filled.mean(0) - backdrop.mean(0)).max() < 15
    # Textured like the backdrop around it, not a flat smear.
    assert filled.std(0).mean() > 0.4 * backdrop.std(0).mean()
    assert np.array_equal(np.asarray(empty_backdrop(photo, mask)), after)


def test_empty_backdrop_shrinks_large_photos_uses_the_inpainter_and_leaves_productless_photos():
    photo, mask = product_photo()
    small = empty_backdrop(photo, mask, max_side=60)
    assert small.size == (60, 45)
    calls = []

    class Inpainter:
        def repair(self, image, hole):
            calls.append((image.size, np.asarray(hole)))
            return Image.new("RGB", image.size, (1, 2, 3))

    assert np.asarray(empty_backdrop(photo, mask, Inpainter())).max() == 3
    (size, hole), = calls
    assert size == photo.size and hole[30:60, 75:95].min() == 255 and hole[:, :40].max() == 0
    empty = Image.new("L", photo.size, 0)
    assert np.array_equal(np.asarray(empty_backdrop(photo, empty)), np.asarray(photo))
    with pytest.raises(ValueError, match="same size"):
        empty_backdrop(photo, Image.new("L", (10, 10)))


def test_backdrop_crops_are_the_largest_product_free_rectangles():
    photo, mask = product_photo(width=160, height=90, left=110)
    crops = backdrop_crops(photo, mask, count=3)
    assert 1 <= len(crops) <= 3
    areas = [c.width * c.height for c in crops]
    assert areas == sorted(areas, reverse=True) and min(crops[0].size) >= 0.3 * 90
    # The largest one is the backdrop left of the product: most of the photo's height, no product colour.
    assert crops[0].height >= 80 and crops[0].width >= 80
    for crop in crops:
        pixels = np.asarray(crop, dtype=np.int16).reshape(-1, 3)
        assert np.abs(pixels - PRODUCT * 0.6).sum(1).min() > 80
    full = Image.new("L", photo.size, 255)
    assert backdrop_crops(photo, full) == []
