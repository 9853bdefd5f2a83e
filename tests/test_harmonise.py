"""mlcore.harmonise: the global colour transform and its ΔE budget, the perturbations and their inverses, the
training data, that training learns, the sampler, the classical baselines. What every kind shares (train, save,
resume, load, apply) is in test_model_contract.py."""
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from mlcore.harmonise import classical, perturb, transform
from mlcore.harmonise.config import HarmoniseConfig
from mlcore.harmonise.data import prepare_photos, product_mask, training_set
from mlcore.harmonise.networks import HarmoniseNet, masked_quantiles
from mlcore.harmonise.sampler import Harmoniser
from mlcore.training import Trainer

from .synthetic import one_thread  # noqa: F401  (a fixture)

TINY = {"size": 16, "width": 4, "hidden": 16}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny networks: one torch thread (``synthetic.one_thread``)."""


def random_params(count, seed=0, share=0.9):
    """Transform parameters spread over ``share`` of every bound."""
    gen = torch.Generator().manual_seed(seed)
    bounds = transform.limits(HarmoniseConfig())
    return (torch.rand(count, transform.PARAMS, generator=gen) * 2 - 1) * bounds * share


def scene(width=40, height=32, seed=0):
    """A product (alpha 1 in a block, a soft edge column) with varied colours over a backdrop gradient."""
    gen = torch.Generator().manual_seed(seed)
    backdrop = torch.linspace(0.3, 0.9, width)[None, None, :].expand(3, height, width).clone()
    backdrop[2] *= 0.8
    product = torch.rand(3, height, width, generator=gen)
    alpha = torch.zeros(height, width)
    alpha[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = 1.0
    alpha[height // 4 : 3 * height // 4, width // 4 - 1] = 0.4
    return product, alpha, backdrop


def synthetic_photo(seed, size=(48, 40)):
    """A product shot whose product is a striped darker copy of its plain backdrop's colour: the product's
    colour follows from the backdrop's, so a perturbed product can be told from a true one."""
    rng = np.random.default_rng(seed)
    width, height = size
    colour = rng.uniform(0.35, 0.85, 3)
    img = np.empty((height, width, 3))
    img[:] = colour
    top, left = height // 5, width // 4
    stripes = ((np.arange(height - 2 * top)[:, None] // 3) % 2) * np.ones((1, width - 2 * left))
    img[top : height - top, left : width - left] = colour * (0.35 + 0.25 * stripes)[:, :, None]
    img += rng.normal(0, 0.004, img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).round().astype(np.uint8))


# ---- the transform -----------------------------------------------------------------------------------------

def test_identity_params_leave_pixels_exactly_unchanged():
    rgb = torch.rand(2, 3, 9, 11, generator=torch.Generator().manual_seed(1))
    rgb[0, :, 0, 0], rgb[0, :, 0, 1] = 0.0, 1.0
    assert torch.equal(transform.apply_transform(rgb, transform.identity(2)), rgb)
    assert torch.equal(transform.apply_transform(rgb[0], transform.identity()), rgb[0])
    product, alpha, backdrop = scene()
    new, report = transform.apply_within_budget(product, alpha, transform.identity(), 8.0)
    assert torch.equal(new, product) and not report["applied"] and report["max_delta_e"] == 0.0


def test_transform_is_global_and_bounded():
    rgb = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2))
    rgb[:, 3, 4] = rgb[:, 12, 9] = torch.tensor([0.2, 0.5, 0.7])
    for params in random_params(5, seed=3):
        out = transform.apply_transform(rgb, params)
        assert torch.equal(out[:, 3, 4], out[:, 12, 9]) and 0 <= out.min() and out.max() <= 1
        # One colour maps the same alone as inside a large image.
        alone = transform.apply_transform(rgb[:, 3:4, 4:5].clone(), params)
        assert torch.allclose(alone[:, 0, 0], out[:, 3, 4], atol=1e-6)
    bounds = transform.limits(HarmoniseConfig())
    squashed = transform.squash(torch.tensor([[-1e4] * 7 + [1e4] * 7]), bounds)
    assert (squashed.abs() <= bounds).all()
    params = random_params(3, seed=4)
    assert torch.allclose(transform.squash(transform.unsquash(params, bounds), bounds), params, atol=1e-5)
    with pytest.raises(ValueError, match="bounds"):
        transform.unsquash(bounds[None] * 1.01, bounds)


def test_only_product_pixels_change():
    product, alpha, backdrop = scene()
    composite = alpha * product + (1 - alpha) * backdrop
    params = random_params(1, seed=5)[0]
    out = transform.recolour(composite, alpha, params)
    outside = alpha == 0
    assert torch.equal(out[:, outside], composite[:, outside])
    assert (out[:, alpha == 1] - composite[:, alpha == 1]).abs().max() > 0.05
    new, _ = transform.apply_within_budget(product, alpha, params, math.inf)
    assert torch.equal(new[:, outside], product[:, outside])
    # The budgeted mapping of distinct colours is the transform itself, pixel by pixel.
    assert torch.allclose(new[:, ~outside], transform.apply_transform(product, params)[:, ~outside], atol=1e-6)


@pytest.mark.parametrize("eight_bit", [True, False])
def test_delta_e_budget_holds_by_construction_for_an_extreme_transform(eight_bit):
    product, alpha, backdrop = scene(seed=6)
    if eight_bit:
        product = product.mul(255).round() / 255
    bounds = transform.limits(HarmoniseConfig())
    extreme = bounds * 0.99 * torch.tensor([1, -1, 1, 1, -1, 1, -1, 1, -1, 1, 1, -1, 1, 1])
    unlimited, free = transform.apply_within_budget(product, alpha, extreme, math.inf)
    assert free["strength"] == 1.0 and free["max_delta_e"] > 30
    new, report = transform.apply_within_budget(product, alpha, extreme, 8.0)
    solid = alpha > 0.5
    change = transform.delta_e(new, product)[solid]
    assert float(change.max()) <= 8.0 + 1e-3 and 0 < report["strength"] < 1 and report["applied"]
    assert report["max_delta_e"] == pytest.approx(float(change.max()), abs=1e-3)
    assert report["mean_delta_e"] == pytest.approx(float(change.mean()), abs=1e-3)
    assert report["budget"] == 8.0 and len(report["params"]) == transform.PARAMS
    # An 8-bit product comes back 8-bit, so saving the composite cannot push a pixel past the budget.
    assert torch.equal(new.mul(255).round().div(255), new) == eight_bit
    if eight_bit:
        mixed = product.clone()
        mixed[:, :, :3] += 0.3 / 255  # a few off-level colours: they stay off-level, the rest stay 8-bit
        out, _ = transform.apply_within_budget(mixed, alpha, extreme, 8.0)
        on_level = (out.mul(255).round().div(255) == out).all(dim=0)
        assert on_level[:, 3:].all() and float(transform.delta_e(out, mixed)[solid].max()) <= 8.0 + 1e-3
    # The largest strength that fits: a clearly stronger blend would break the budget.
    stronger = transform.apply_transform(product, extreme * min(1.0, report["strength"] + 0.02))
    assert float(transform.delta_e(stronger, product)[solid].max()) > 8.0
    nothing, zero = transform.apply_within_budget(product, alpha, extreme, 0.0)
    # (An 8-bit product may keep a sliver of strength whose change rounds away.)
    assert torch.equal(nothing, product) and zero["strength"] < 1e-3 and not zero["applied"]


# ---- perturbations ----------------------------------------------------------------------------------------

def test_known_inverse_params_undo_a_perturbation():
    # Mid-range, moderately coloured pixels: no step at the end of its range clips them.
    gen = torch.Generator().manual_seed(7)
    rgb = torch.rand(1, 1, 12, 12, generator=gen) * 0.3 + 0.3 + torch.rand(1, 3, 12, 12, generator=gen) * 0.12
    bounds = transform.limits(HarmoniseConfig())
    # Each step at the end of its range alone: undone to float precision.
    for name, (low, high) in perturb.RANGES.items():
        for value in (low, high):
            p = perturb.identity_perturbation(1)
            setattr(p, name, torch.tensor([value]))
            restored = transform.apply_transform(perturb.apply_perturbation(rgb, p), perturb.inverse_params(p, bounds))
            assert (restored - rgb).abs().max() < 1e-4, name
    # Random combinations: undone up to what clipping took away (mid-range colours rarely clip).
    p = perturb.random_perturbations(32, torch.Generator().manual_seed(8), scale=0.6)
    batch = rgb.expand(32, -1, -1, -1)
    perturbed = perturb.apply_perturbation(batch, p)
    restored = transform.apply_transform(perturbed, perturb.inverse_params(p, bounds))
    unclipped = ((perturbed > 0) & (perturbed < 1)).flatten(1).all(dim=1)
    assert unclipped.sum() >= 24
    assert (restored - batch).abs()[unclipped].max() < 1e-3
    assert (perturbed - batch).abs().mean() > 0.02


def test_random_perturbations_are_seeded_and_mix_identity():
    a = perturb.random_perturbations(200, torch.Generator().manual_seed(9), identity_p=0.3)
    b = perturb.random_perturbations(200, torch.Generator().manual_seed(9), identity_p=0.3)
    assert all(torch.equal(getattr(a, n), getattr(b, n)) for n in perturb.RANGES)
    unchanged = torch.stack([getattr(a, n) == 0 for n in perturb.RANGES]).all(dim=0)
    assert 0.25 < float(unchanged.float().mean()) < 0.45
    for name, (low, high) in perturb.RANGES.items():
        assert low <= float(getattr(a, name).min()) and float(getattr(a, name).max()) <= high


# ---- data -------------------------------------------------------------------------------------------------

def test_no_usable_photo_raises_a_clear_error():
    with pytest.raises(ValueError, match="no photo can train the harmonisation model"):
        training_set([])
    tiny, blank = Image.new("RGB", (8, 30), "red"), Image.new("RGB", (60, 50), (200, 30, 30))
    with pytest.raises(ValueError, match="no photo can train.*blank"):
        training_set([tiny, blank])
    config, (images, masks) = training_set([tiny, synthetic_photo(0)], **TINY)
    assert images.shape == (1, 3, 16, 16) and masks.shape == (1, 1, 16, 16) and images.dtype == masks.dtype == torch.uint8


def test_masks_prefer_the_border_model_and_fall_back_to_an_ellipse():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8))
    cut_out = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    cut_out.paste((200, 40, 40, 255), (10, 10, 30, 30))
    _, masks, sources, skipped = prepare_photos([synthetic_photo(1), noise, cut_out], 16)
    assert sources[0] == "border" and sources[1] in ("border-unsure", "ellipse") and sources[2] == "alpha"
    assert not skipped and 0.1 < float(masks[0].float().mean()) / 255 < 0.6
    mask = product_mask(synthetic_photo(1))
    assert mask.mode == "L" and mask.size == (48, 40) and np.asarray(mask)[20, 24] == 255 and np.asarray(mask)[1, 1] == 0


def test_masked_quantiles():
    values = torch.arange(16.0).view(1, 1, 4, 4)
    inside = values < 5
    q = masked_quantiles(values, inside, (0.0, 0.5, 1.0))
    assert q.tolist() == [[0.0, 2.0, 4.0]]
    assert masked_quantiles(values, torch.zeros_like(inside), (0.5,)).tolist() == [[0.0]]


# ---- training and the sampler ------------------------------------------------------------------------------

def test_config_checks_its_values():
    assert HarmoniseConfig.from_dict(HarmoniseConfig().to_dict()) == HarmoniseConfig()
    for bad in ({"size": 8}, {"max_delta_e": 0}, {"max_mix": math.inf}, {"identity_p": 1.5}, {"width": 0}, {"kind": "x"}):
        with pytest.raises(ValueError):
            HarmoniseConfig(**bad)


def test_untrained_network_predicts_the_identity():
    net = HarmoniseNet(HarmoniseConfig(**TINY))
    out = net(torch.rand(2, 3, 16, 16), torch.rand(2, 1, 16, 16))
    assert torch.equal(out, torch.zeros(2, transform.PARAMS))


def restoration_error(model, photos, seed):
    """Mean squared error over the product pixels of no change and of the model, on perturbed ``photos``."""
    gen = torch.Generator().manual_seed(seed)
    before = after = 0.0
    for photo in photos:
        original = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1).float() / 255
        alpha = torch.from_numpy(np.asarray(product_mask(photo)).copy()).float() / 255
        p = perturb.random_perturbations(1, gen, step_p=1.0)
        product = perturb.apply_perturbation(original[None], p)[0]
        restored, _ = model(product, alpha, original, max_delta_e=math.inf)
        solid = alpha > 0.5
        before += float((product - original)[:, solid].pow(2).mean())
        after += float((restored - original)[:, solid].pow(2).mean())
    return before / len(photos), after / len(photos)


def test_training_on_photos_learns_to_restore_held_out_products():
    config, data = training_set([synthetic_photo(i) for i in range(40)], size=32, width=8, hidden=32)
    trainer = Trainer(config, *data, batch_size=16, seed=0)
    summary = trainer.fit(150, log_every=50)
    assert summary["steps_done"] == 150 and math.isfinite(summary["loss"])
    buffer = io.BytesIO()
    trainer.save(buffer)
    model = Harmoniser.from_checkpoint(buffer.getvalue())
    before, after = restoration_error(model, [synthetic_photo(100 + i) for i in range(10)], seed=1)
    assert after < 0.75 * before, (before, after)


def test_harmoniser_call_report_and_photo():
    config, data = training_set([synthetic_photo(i) for i in range(4)], **TINY)
    trainer = Trainer(config, *data, batch_size=4, seed=0, lr=1e-2)
    trainer.fit(3)
    buffer = io.BytesIO()
    trainer.save(buffer)
    model = Harmoniser.from_checkpoint(buffer.getvalue())
    product, alpha, backdrop = scene()
    params = model.predict(product, alpha, backdrop)
    assert params.shape == (transform.PARAMS,) and not torch.equal(params, torch.zeros(transform.PARAMS))
    new, report = model(product, alpha, backdrop)
    assert new.shape == product.shape and report["budget"] == config.max_delta_e
    assert {"applied", "strength", "max_delta_e", "mean_delta_e", "params"} <= set(report)
    assert report["max_delta_e"] <= config.max_delta_e + 1e-3
    same, zero = model(product, alpha[None], backdrop, max_delta_e=0.0)
    assert torch.equal(same, product) and zero["strength"] == 0.0
    with pytest.raises(ValueError, match="alpha"):
        model(product, alpha[:-1], backdrop)
    # A cut-out photo keeps its alpha; the backdrop of a plain photo stays as it was.
    rgba = synthetic_photo(5).convert("RGBA")
    rgba.putalpha(product_mask(synthetic_photo(5)))
    assert model.harmonise_photo(rgba).mode == "RGBA"
    photo = synthetic_photo(6)
    out = model.harmonise_photo(photo, max_delta_e=math.inf)
    mask = np.asarray(product_mask(photo))
    assert out.size == photo.size and np.array_equal(np.asarray(out)[mask == 0], np.asarray(photo)[mask == 0])


# ---- classical baselines ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", [classical.reinhard, classical.histogram_match])
def test_classical_baselines_move_the_product_towards_the_backdrop(method):
    from mlcore.cielab import srgb_to_lab

    product, alpha, backdrop = scene(seed=10)
    product = product * torch.tensor([0.9, 0.3, 0.3])[:, None, None]
    new = method(product, alpha, backdrop)
    assert new.shape == product.shape and 0 <= new.min() and new.max() <= 1
    solid, behind = alpha > 0.5, alpha == 0
    target = srgb_to_lab(backdrop)[:, behind].mean(dim=1)
    before = (srgb_to_lab(product)[:, solid].mean(dim=1) - target).norm()
    after = (srgb_to_lab(new)[:, solid].mean(dim=1) - target).norm()
    assert after < 0.3 * before
    assert torch.equal(new[:, behind], product[:, behind])
    half = method(product, alpha, backdrop, strength=0.5)
    assert (srgb_to_lab(half)[:, solid].mean(dim=1) - target).norm() < before
    assert torch.allclose(method(product, alpha, backdrop, strength=0.0)[:, solid], product[:, solid], atol=1e-4)


def test_training_batches_of_both_pairings():
    photos = [synthetic_photo(i) for i in range(4)]
    config, data = training_set(photos, **TINY, identity_p=1.0, scene_scale=0.0, crop=1.0)
    batch = Trainer(config, *data, batch_size=4, seed=0).objective.sample_batch(torch.Generator().manual_seed(0))
    # Nothing perturbed: the composite is the (mirrored) photo itself, the target.
    assert torch.equal(batch["composite"], batch["original"])
    for pairing in ("product", "both"):
        config, data = training_set(photos, **TINY, pairing=pairing)
        trainer = Trainer(config, *data, batch_size=4, seed=0)
        batch = trainer.objective.sample_batch(torch.Generator().manual_seed(1))
        assert batch["composite"].shape == batch["original"].shape == (4, 3, 16, 16) and batch["alpha"].shape == (4, 1, 16, 16)
        backdrop = batch["alpha"] == 0
        # The backdrop always shows the target's light; only the product differs.
        assert torch.allclose(batch["composite"].expand(-1, 3, -1, -1)[backdrop.expand(-1, 3, -1, -1)],
                              batch["original"][backdrop.expand(-1, 3, -1, -1)], atol=1e-6)
        assert not torch.equal(batch["composite"], batch["original"])
        assert math.isfinite(trainer.fit(2)["loss"])
