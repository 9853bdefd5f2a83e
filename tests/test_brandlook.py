"""mlcore.brandlook: the look and its distance, LUTs, grading, what training learns, applying a look, baselines,
edge SSIM. What every kind shares (train, save, resume, load, apply) is in test_model_contract.py."""
import io
import json
import math

import pytest
import torch
from PIL import Image

from mlcore.brandlook import classical, edges
from mlcore.cielab import lab_to_srgb, srgb_to_lab
from mlcore.brandlook.config import BrandLookConfig
from mlcore.brandlook.distance import image_distance, look_distance
from mlcore.brandlook.grading import Grade, apply_grade, random_grades
from mlcore.brandlook.images import map_colours, rgb_image, rgb_tensor
from mlcore.brandlook.look import LEVELS, check_look, look_of, sorted_quantiles
from mlcore.brandlook.lut import apply_lut, apply_lut_large, identity_lut
from mlcore.brandlook.objective import lut_curvature, lut_decrease
from mlcore.brandlook.sampler import BrandLook
from mlcore.training import Trainer

from .synthetic import one_thread  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Tiny networks: one torch thread (``synthetic.one_thread``)."""


TINY = {"lut_size": 5, "curve_knots": 3, "luma_knots": 2, "learned_luts": 2, "thumb_size": 8, "train_size": 16, "width": 4, "hidden": 32, "max_references": 2}


def photo(width=48, height=40, seed=0):
    """A synthetic product shot: a smooth backdrop gradient, a coloured block, a few random patches."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, height)[:, None].expand(height, width)
    x = torch.linspace(0, 1, width)[None, :].expand(height, width)
    rgb = torch.stack((0.3 + 0.5 * x, 0.35 + 0.4 * y, 0.6 - 0.3 * x * y))
    rgb[:, height // 4 : 3 * height // 4, width // 3 : 2 * width // 3] = torch.rand(3, 1, 1, generator=gen) * 0.6 + 0.2
    for _ in range(4):
        top, left = (int(v) for v in torch.randint(0, min(width, height) - 6, (2,), generator=gen))
        rgb[:, top : top + 6, left : left + 6] = torch.rand(3, 1, 1, generator=gen)
    return rgb_image(rgb)


def shift_lab(image, da=0.0, db=0.0, dl=0.0):
    def mapping(rgb):
        lab = srgb_to_lab(rgb)
        return lab_to_srgb(lab + torch.tensor([dl, da, db])[:, None, None])

    return map_colours(image, mapping)


def tiny_data(count=12, side=16):
    return torch.stack([
        torch.frombuffer(bytearray(photo(side, side, seed=i).tobytes()), dtype=torch.uint8).view(side, side, 3).permute(2, 0, 1)
        for i in range(count)
    ])


# --- colour and the look ---------------------------------------------------------------------------------

def test_lab_round_trip_and_white_point():
    rgb = torch.rand(2, 3, 5, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lab_to_srgb(srgb_to_lab(rgb)), rgb, atol=1e-5)
    white = srgb_to_lab(torch.ones(3, 1, 1)).flatten()
    assert torch.allclose(white, torch.tensor([100.0, 0.0, 0.0]), atol=1e-3)


def test_quantiles_follow_the_midpoint_convention():
    values = torch.arange(4, dtype=torch.float64)  # samples at levels 1/8, 3/8, 5/8, 7/8
    q = sorted_quantiles(values, count=4)
    assert torch.allclose(q, values)
    q = sorted_quantiles(values, count=2)  # levels 1/4, 3/4 -> halfway between neighbours
    assert torch.allclose(q, torch.tensor([0.5, 2.5], dtype=torch.float64))


def test_distance_is_zero_to_itself_and_grows_with_a_colour_shift():
    image = photo()
    look = look_of([image])
    assert image_distance(image, look) == pytest.approx(0.0, abs=1e-9)
    distances = [image_distance(shift_lab(image, db=d), look) for d in (2.0, 5.0, 10.0, 20.0)]
    assert all(b > a for a, b in zip(distances, distances[1:])), distances
    # W1 of a uniform shift is the shift (no clipping at +5 b* for these colours; rounding to uint8 costs a little).
    assert distances[1] == pytest.approx(5.0, abs=0.6)


def test_look_of_a_set_averages_its_photos_quantiles():
    a, b = photo(seed=1), shift_lab(photo(seed=2), dl=10.0)
    both, one, other = look_of([a, b]), look_of([a]), look_of([b])
    for channel in ("L", "a", "b", "C"):
        expected = [(x + y) / 2 for x, y in zip(one["quantiles"][channel], other["quantiles"][channel])]
        assert both["quantiles"][channel] == pytest.approx(expected)
    assert both["images"] == 2
    assert look_distance(both, both) == 0.0
    assert look_distance(one, other) > 5.0


def test_look_is_plain_json_data_and_is_checked_when_read_back():
    look = look_of([photo()])
    again = json.loads(json.dumps(look))
    assert check_look(again) == look
    assert len(look["quantiles"]["L"]) == LEVELS and len(look["mean"]) == 3
    broken = json.loads(json.dumps(look))
    broken["quantiles"]["a"] = broken["quantiles"]["a"][::-1]
    with pytest.raises(ValueError, match="must not decrease"):
        check_look(broken)
    broken = json.loads(json.dumps(look))
    broken["mean"][0] = math.nan
    with pytest.raises(ValueError, match="finite"):
        check_look(broken)
    with pytest.raises(ValueError, match="version"):
        check_look({**look, "version": 99})
    with pytest.raises(ValueError, match="at least one"):
        look_of([])


def test_transparent_pixels_do_not_count_in_the_look():
    image = photo().convert("RGBA")
    alpha = Image.new("L", image.size, 255)
    alpha.paste(0, (0, 0, image.width // 2, image.height))
    image.putalpha(alpha)
    # Paint the transparent half a loud red: it must not change the look.
    red = image.copy()
    red.paste((255, 0, 0, 0), (0, 0, image.width // 2, image.height))
    assert look_distance(look_of([image]), look_of([red])) < 1.0
    assert look_distance(look_of([image.convert("RGB")]), look_of([red.convert("RGB")])) > 5.0


# --- LUTs, grading, regularisers -----------------------------------------------------------------------------

@pytest.mark.parametrize("size", [2, 5, 17])
def test_identity_lut_is_exact(size):
    rgb = torch.rand(2, 3, 9, 7, generator=torch.Generator().manual_seed(size))
    rgb[0, :, 0, 0], rgb[0, :, 0, 1] = 0.0, 1.0
    out = apply_lut(rgb, identity_lut(size).expand(2, -1, -1, -1, -1))
    assert (out - rgb).abs().max() < 1e-6


def test_lut_axes_are_red_green_blue():
    # An affine table (channel swap and scale) is reproduced exactly by trilinear interpolation.
    ident = identity_lut(5)
    swapped = torch.stack((ident[2], 0.5 * ident[0], ident[1]))  # out = (b, r / 2, g)
    rgb = torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    out = apply_lut(rgb, swapped[None])
    expected = torch.stack((rgb[0, 2], 0.5 * rgb[0, 0], rgb[0, 1]))[None]
    assert (out - expected).abs().max() < 1e-6


def test_large_application_matches_and_is_chunked(monkeypatch):
    from mlcore.brandlook import lut as lut_module

    monkeypatch.setattr(lut_module, "CHUNK_PIXELS", 50)
    table = identity_lut(5) ** 1.5
    rgb = torch.rand(3, 23, 17, generator=torch.Generator().manual_seed(4))
    assert torch.allclose(apply_lut_large(rgb, table), apply_lut(rgb[None], table[None])[0].clamp(0, 1), atol=1e-6)


def test_grades_are_identity_when_zero_and_reproducible():
    rgb = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    assert (apply_grade(rgb, Grade.identity(3)) - rgb).abs().max() < 1e-5
    first = apply_grade(rgb, random_grades(3, torch.Generator().manual_seed(7)))
    again = apply_grade(rgb, random_grades(3, torch.Generator().manual_seed(7)))
    assert torch.equal(first, again)
    warm = apply_grade(rgb, Grade.fixed(3, wb_red=0.2, wb_blue=-0.2))
    assert (warm[:, 0] >= rgb[:, 0] - 1e-6).all() and (warm[:, 2] <= rgb[:, 2] + 1e-6).all()


def test_regularisers_leave_affine_monotone_tables_alone_and_punish_the_rest():
    ident = identity_lut(9)[None]
    affine = torch.stack((0.8 * ident[0, 0] + 0.1, ident[0, 1], 0.9 * ident[0, 2] + 0.05 * ident[0, 0]))[None]
    assert lut_curvature(affine) < 1e-10 and lut_decrease(affine) == 0.0
    inverted = torch.stack((1.0 - ident[0, 0], ident[0, 1], ident[0, 2]))[None]
    assert lut_decrease(inverted) > 0.3
    bumpy = ident + 0.05 * torch.randn(ident.shape, generator=torch.Generator().manual_seed(0))
    assert lut_curvature(bumpy) > 1e-3


# --- trainer, checkpoint, sampler -------------------------------------------------------------------------

def fixed_batch(trainer, seed=123):
    return trainer.objective.sample_batch(torch.Generator().manual_seed(seed))


def test_trainer_loss_goes_down_on_tiny_data():
    trainer = Trainer(BrandLookConfig(**TINY), tiny_data(), batch_size=8, lr=3e-3, seed=0)
    batch = fixed_batch(trainer)
    with torch.no_grad():
        before = float(trainer.objective.terms(batch)["recon"])
    summary = trainer.fit(40, log_every=10)
    with torch.no_grad():
        after = float(trainer.objective.terms(batch)["recon"])
    assert summary["steps_done"] == 40 and len(trainer.history["loss"]) == 4
    assert after < 0.8 * before, (before, after)


def test_apply_keeps_size_mode_and_alpha():
    trainer = Trainer(BrandLookConfig(**TINY), tiny_data(), batch_size=4, seed=0)
    buffer = io.BytesIO()
    trainer.save(buffer)
    brand = BrandLook.from_checkpoint(buffer.getvalue())
    look = json.loads(json.dumps(brand.look_of([photo(seed=8)])))

    rgb = photo(37, 23)
    out = brand.apply(rgb, look)
    assert out.mode == "RGB" and out.size == (37, 23)

    rgba = photo(31, 45).convert("RGBA")
    alpha = Image.linear_gradient("L").resize(rgba.size)
    rgba.putalpha(alpha)
    out = brand.apply(rgba, look)
    assert out.mode == "RGBA" and out.size == (31, 45)
    assert out.getchannel("A").tobytes() == alpha.tobytes()
    assert brand.apply(photo().convert("L"), look).mode == "RGB"
    with pytest.raises(ValueError):
        brand.apply(rgb, {"version": 1})


def test_untrained_model_is_the_identity_map():
    # Residual tables start at zero: before training, apply changes nothing but uint8 rounding.
    trainer = Trainer(BrandLookConfig(**TINY), tiny_data(), batch_size=4, seed=0)
    brand = BrandLook(trainer.config, trainer.ema, package_version="x", step=0, device=torch.device("cpu"))
    image = photo()
    out = brand.apply(image, look_of([shift_lab(photo(seed=3), db=20)]))
    assert (rgb_tensor(out) - rgb_tensor(image)).abs().max() <= 1.0 / 255 + 1e-6


def test_brief_training_learns_to_apply_a_look():
    """After a short training on synthetic photos, the look of a photo applied to a colour-cast copy of it
    brings the copy closer to the photo's look (and to the photo) than it was."""
    torch.manual_seed(0)
    config = BrandLookConfig(**{**TINY, "self_look_p": 1.0})
    trainer = Trainer(config, tiny_data(24), batch_size=8, lr=2e-3, seed=1)
    trainer.fit(150)
    brand = BrandLook(config, trainer.ema, package_version="x", step=trainer.step, device=torch.device("cpu"))
    original = photo(32, 32, seed=30)
    cast = map_colours(original, lambda rgb: apply_grade(rgb[None], Grade.fixed(1, wb_red=0.25, wb_blue=-0.25))[0])
    look = look_of([original])
    mapped = brand.apply(cast, look)
    before, after = image_distance(cast, look), image_distance(mapped, look)
    assert after < 0.6 * before, (before, after)
    error = lambda image: float((rgb_tensor(image) - rgb_tensor(original)).abs().mean())  # noqa: E731
    assert error(mapped) < error(cast)


# --- classical baselines, edges ------------------------------------------------------------------------------

def test_classical_baselines_move_the_statistics_to_the_look():
    image = photo(seed=11)
    target = look_of([shift_lab(photo(seed=12), da=8.0, db=-6.0)])
    before = image_distance(image, target)
    matched = classical.histogram_match(image, target)
    assert image_distance(matched, target) < 0.3 * before
    moved = classical.reinhard(image, target)
    assert image_distance(moved, target) < 0.6 * before
    own = look_of([moved])
    assert own["mean"][1] == pytest.approx(target["mean"][1], abs=1.5)
    assert own["mean"][2] == pytest.approx(target["mean"][2], abs=1.5)


def test_interpolation_extends_with_slope_one():
    xp, fp = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([10.0, 20.0, 40.0])
    out = classical.interpolate(torch.tensor([-1.0, 0.5, 1.5, 3.0]), xp, fp)
    assert torch.allclose(out, torch.tensor([9.0, 15.0, 30.0, 41.0]), atol=1e-4)


def test_edge_ssim_is_one_for_identical_photos_and_drops_when_edges_change():
    image = photo(64, 64)
    assert edges.edge_ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    from PIL import ImageFilter

    blurred = [edges.edge_ssim(image, image.filter(ImageFilter.GaussianBlur(radius))) for radius in (2, 4)]
    assert blurred[1] < blurred[0] < 0.95
    flat = map_colours(image, lambda rgb: 0.5 + 0.5 * (rgb - 0.5))
    assert 0.5 < edges.edge_ssim(image, flat) < 0.95
    with pytest.raises(ValueError, match="size"):
        edges.edge_ssim(image, photo(60, 64))


def test_ssim_of_halved_edges_is_about_0_64():
    edge = 50.0 * torch.rand(64, 64, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    assert edges.ssim(edge, 0.5 * edge) == pytest.approx(0.64, abs=0.02)


def test_ssim_formula_on_constant_maps():
    # No variance: SSIM = (2ab + C1) / (a^2 + b^2 + C1) with C1 = (0.01 * 100)^2 = 1.
    a, b = torch.full((20, 20), 3.0, dtype=torch.float64), torch.full((20, 20), 5.0, dtype=torch.float64)
    assert edges.ssim(a, b) == pytest.approx((2 * 15 + 1) / (9 + 25 + 1))
    ramp = torch.arange(12, dtype=torch.float64)
    assert torch.allclose(edges.sobel_magnitude(ramp[None].expand(12, 12) * 3.0)[1:-1, 1:-1], torch.tensor(3.0, dtype=torch.float64))
