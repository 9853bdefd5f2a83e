"""Product scenes (mlcore.scenes): canvas and layout arithmetic, the soft matte, placement on the floor line,
shadows and reflection, the backdrop's depth of field, and the composite's guarantees (exact backdrop where
the product is not, exact photo pixels at scale 1, pure white for the white presets, an alpha that nothing
but the matte decides). Synthetic images only."""
import math
import time

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from mlcore.scenes import (
    ASPECTS, PRESETS, Layout, Lighting, canvas_for, cast_shadow, compose_scene, contact_shadow, fit_backdrop,
    place_on_floor, plan_canvas, premultiplied_foreground, reflection, soft_matte,
)
from mlcore.scenes.filters import blur
from mlcore.scenes.grounding import grounded_parts
from mlcore.scenes.shadows import darkening, flat_shadow

from .synthetic import one_thread  # noqa: F401  (a fixture)


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Small tensors: one torch thread (``synthetic.one_thread``)."""


def product_photo(size=(160, 200), box=(40, 30, 120, 180), blur=2.0, seed=0):
    """A striped, rounded 'bottle' with a blurred (soft) edge on a light, slightly noisy backdrop; returns
    (photo, its true soft alpha as float H x W, a binary mask "L")."""
    width, height = size
    rng = np.random.default_rng(seed)
    hard = Image.new("L", size, 0)
    ImageDraw.Draw(hard).rounded_rectangle(box, radius=(box[2] - box[0]) // 5, fill=255)
    soft = np.asarray(hard.filter(ImageFilter.GaussianBlur(blur))).astype(np.float64) / 255.0 if blur else (
        np.asarray(hard) / 255.0)
    backdrop = np.full((height, width, 3), (228.0, 226.0, 222.0)) + rng.normal(0, 1.5, (height, width, 3))
    stripes = (np.arange(height)[:, None] // 7 % 2) * np.array([70.0, 10.0, 0.0])[None, :]
    product = np.array([40.0, 70.0, 150.0])[None, None, :] + stripes[:, None, :] + rng.normal(0, 2, (height, width, 3))
    image = soft[..., None] * product + (1 - soft[..., None]) * backdrop
    photo = Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8))
    return photo, soft, hard


def exact_matte(soft):
    """The true soft alpha as an "L" matte (what ``soft_matte`` estimates)."""
    return Image.fromarray((soft * 255).round().astype(np.uint8))


def textured_backdrop(size=(96, 96), seed=3):
    """A gradient 'wall and floor' with fine texture (so blur is measurable)."""
    width, height = size
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None, None]
    base = np.array([210.0, 200.0, 185.0]) * (1 - y) + np.array([140.0, 120.0, 100.0]) * y
    image = base + rng.normal(0, 25, (height, width, 3))
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def arr(image):
    return np.asarray(image).astype(np.int32)


def laplacian_variance(grey):
    lap = grey[1:-1, 1:-1] * 4 - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(lap.var())


# ---- layout -------------------------------------------------------------------------------------------------

def test_presets_give_their_marketplace_sizes():
    expected = {
        "marketplace-white-2000": (2000, 2000), "square-1080": (1080, 1080), "portrait-1350": (1080, 1350),
        "banner-1920": (1920, 1080), "taobao-white-800": (800, 800), "jd-white-800": (800, 800),
    }
    for name, size in expected.items():
        preset = PRESETS[name]
        assert preset.name == name and preset.label and preset.aspect in ASPECTS
        assert canvas_for(preset.layout(), (640, 480), (300, 200)) == size
    assert PRESETS["marketplace-white-2000"].backdrop == "white" and PRESETS["square-1080"].backdrop is None
    assert PRESETS["marketplace-white-2000"].fill == 0.85 and PRESETS["banner-1920"].fill == 0.5


@pytest.mark.parametrize("aspect", ["1:1", "4:5", "3:4", "16:9"])
def test_small_photo_keeps_its_pixel_scale_at_the_asked_aspect(aspect):
    layout = Layout(aspect=aspect, fill=0.7)
    (width, height), scale = plan_canvas(layout, (300, 400), (150, 310))
    ratio_w, ratio_h = ASPECTS[aspect]
    assert scale == 1.0
    assert abs(width / height - ratio_w / ratio_h) <= 1.0 / min(width, height)
    # The box fills 70% of the limiting side, to the pixel.
    assert abs(max(150 / width, 310 / height) - 0.7) <= 1.0 / min(width, height)
    assert max(width, height) < 1024


def test_large_photo_gets_at_least_the_minimum_long_side():
    # A small product in a 1200 x 1600 photo: at scale 1 the canvas would be 572 px; the photo is big
    # enough for 1024, so the canvas is raised and the product scaled up.
    (width, height), scale = plan_canvas(Layout(aspect="4:5", fill=0.7), (1200, 1600), (300, 400))
    assert (width, height) == (819, 1024) and scale > 1.0
    assert canvas_for(Layout(aspect="4:5", fill=0.7), (1200, 1600), (300, 400)) == (819, 1024)
    # A 900 px photo may not be blown up to 1024: scale 1.0.
    assert plan_canvas(Layout(fill=0.7), (700, 900), (300, 400))[1] == 1.0
    # An asked long side wins; "original" is the photo's own aspect.
    assert canvas_for(Layout(aspect="original", long_side=1500), (1200, 800), (300, 400)) == (1500, 1000)
    assert canvas_for(Layout(aspect="original", fill=0.5), (300, 200), (90, 60)) == (180, 120)


def test_canvas_is_capped():
    (width, height), scale = plan_canvas(Layout(aspect="1:1", fill=0.5), (9000, 9000), (8000, 8000))
    assert (width, height) == (8192, 8192) and scale == pytest.approx(0.5 * 8192 / 8000)


@pytest.mark.parametrize("field,kwargs", [
    ("aspect", {"aspect": "2:1"}), ("fill", {"fill": 0.0}), ("fill", {"fill": 1.5}), ("floor", {"floor": 1.2}),
    ("floor", {"floor": "low"}), ("x", {"x": -0.1}), ("long_side", {"long_side": 9000}),
    ("long_side", {"long_side": 1.5}),
])
def test_bad_layout_names_the_field(field, kwargs):
    with pytest.raises(ValueError, match=field):
        Layout(**kwargs)


@pytest.mark.parametrize("field,kwargs", [
    ("elevation", {"elevation": 0}), ("elevation", {"elevation": 95}), ("contact", {"contact": -0.1}),
    ("cast", {"cast": 1.5}), ("reflection", {"reflection": 0.8}), ("direction", {"direction": float("nan")}),
    ("pose", {"pose": "sitting"}), ("reflection", {"pose": "flat", "reflection": 0.2}),
])
def test_bad_lighting_names_the_field(field, kwargs):
    with pytest.raises(ValueError, match=field):
        Lighting(**kwargs)


def test_bad_composition_arguments_name_the_argument():
    photo, soft, _ = product_photo()
    matte = exact_matte(soft)
    backdrop = textured_backdrop()
    with pytest.raises(ValueError, match="depth_of_field"):
        fit_backdrop(backdrop, (100, 100), floor=0.8, depth_of_field=-1)
    with pytest.raises(ValueError, match="grain"):
        fit_backdrop(backdrop, (100, 100), floor=0.8, grain=0.5)
    with pytest.raises(ValueError, match="floor"):
        fit_backdrop(backdrop, (100, 100), floor=1.5)
    with pytest.raises(ValueError, match="backdrop"):
        compose_scene(photo, matte, "sky blue", layout=Layout(), lighting=None)
    with pytest.raises(ValueError, match="depth_of_field"):
        compose_scene(photo, matte, "white", layout=Layout(), lighting=None, depth_of_field=9)
    with pytest.raises(ValueError, match="seed"):
        compose_scene(photo, matte, backdrop, layout=Layout(), lighting=None, seed=-1)
    with pytest.raises(ValueError, match="lighting"):
        compose_scene(photo, matte, "white", layout=Layout(), lighting="soft")
    with pytest.raises(ValueError, match="empty"):
        compose_scene(photo, Image.new("L", photo.size, 0), "white", layout=Layout(), lighting=None)
    with pytest.raises(ValueError, match="harmonise"):
        compose_scene(photo, matte, "white", layout=Layout(), lighting=None,
                      harmonise=lambda rgb, a, b: (rgb[:, :2], {}))


# ---- placement ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", [
    Layout(aspect="1:1", fill=0.7, floor=0.88), Layout(aspect="4:5", fill=0.6, floor=0.8, x=0.4),
    Layout(aspect="16:9", fill=0.5, floor=0.9, long_side=480),
    Layout(aspect="4:5", fill=0.85, floor=0.9, long_side=350),
])
def test_product_stands_on_the_floor_line_at_the_asked_fill(layout):
    photo, soft, _ = product_photo()
    placed = place_on_floor(photo, exact_matte(soft), layout)
    width, height = placed.canvas
    left, top, right, bottom = placed.box
    floor_y = round(layout.floor * height)
    assert placed.floor_y == floor_y and placed.moved is None
    # The product's body (rows at least half opaque) ends on the floor line: exactly at scale 1, to a
    # pixel when resampled; only the faint rim of its soft edge (blur 2 px, scaled) hangs below it.
    solid_rows = np.nonzero((placed.alpha.numpy() >= 128).sum(axis=1) >= 2)[0]
    tolerance = 0 if placed.scale == 1.0 else 1
    assert abs(solid_rows[-1] + 1 - floor_y) <= tolerance
    assert floor_y <= bottom <= floor_y + math.ceil(3 * 2 * placed.scale) + 1
    assert abs(max((right - left) / width, (bottom - top) / height) - layout.fill) <= 2.5 / min(width, height)
    assert abs((left + right) / 2 - layout.x * width) <= 1.5


def test_a_stray_thread_below_the_product_does_not_lift_it_off_the_floor():
    photo, soft, _ = product_photo()
    alpha = soft.copy()
    alpha[181:195, 80] = 0.3  # a faint thread hanging 14 px under the product
    placed = place_on_floor(photo, exact_matte(alpha), Layout(fill=0.7, floor=0.8))
    height = placed.canvas[1]
    solid_rows = np.nonzero((placed.alpha.numpy() >= 128).sum(axis=1) >= 2)[0]
    assert solid_rows[-1] + 1 == placed.floor_y == round(0.8 * height)
    assert placed.box[3] >= placed.floor_y + 12  # the thread hangs below the floor line


def test_a_product_that_would_stick_out_is_moved_and_says_so():
    photo, soft, _ = product_photo()
    placed = place_on_floor(photo, exact_matte(soft), Layout(fill=0.9, floor=0.5, x=0.95, long_side=300))
    left, top, right, bottom = placed.box
    assert top >= 0 and left >= 0 and right <= 300 and bottom <= 300
    assert placed.moved and "moved" in placed.moved and placed.floor_y > 150


# ---- matte ---------------------------------------------------------------------------------------------------

def test_soft_matte_follows_a_blurred_edge_and_is_exact_away_from_it():
    photo, soft, hard = product_photo(blur=2.5)
    matte = arr(soft_matte(photo, hard))
    true = soft * 255
    assert matte.shape == true.shape
    partial = (matte > 0) & (matte < 255)
    # A binary mask comes out with a soft rim all along the outline (not a stair-step)...
    outline = (np.asarray(hard) > 0) != (np.asarray(hard.filter(ImageFilter.MinFilter(3))) > 0)
    assert partial.sum() >= 2 * outline.sum()
    # ...that follows the photo's blurred edge ...
    band = (true > 2) & (true < 253)
    assert np.abs(matte[band] - true[band]).mean() < 20
    # ...and is exactly 255 well inside and exactly 0 well outside.
    assert (matte[true >= 254.99] == 255).mean() > 0.995
    assert (matte[40:150, 60:100] == 255).all()
    assert (matte[:, :20] == 0).all() and (matte[true == 0] == 0).mean() > 0.99


def test_soft_matte_from_a_low_resolution_mask_is_at_the_photo_resolution():
    photo, soft, hard = product_photo(size=(320, 400), box=(80, 60, 240, 360), blur=2.0)
    small = hard.resize((80, 100), Image.Resampling.NEAREST)
    matte = arr(soft_matte(photo, small))
    assert matte.shape == (400, 320)
    assert ((matte > 0) & (matte < 255)).sum() > 500
    inside, outside = soft > 0.5, soft <= 0.5
    iou = ((matte > 127) & inside).sum() / ((matte > 127) | inside).sum()
    assert iou > 0.97
    assert (matte[:, :40] == 0).all() and (matte[120:300, 130:190] == 255).all()
    assert outside.sum() > 0
    with pytest.raises(ValueError, match="aspect"):
        soft_matte(photo, Image.new("L", (100, 100), 255))


def test_edge_colour_loses_the_old_backdrop_so_no_halo():
    height, width = 60, 80
    alpha = torch.zeros(height, width)
    alpha[:, 30:] = 1.0
    alpha[:, 26:30] = torch.tensor([0.2, 0.4, 0.6, 0.8])  # a soft edge, 4 px wide
    foreground, old = torch.tensor([20.0, 40.0, 90.0]), torch.tensor([235.0, 230.0, 225.0])
    observed = alpha * foreground[:, None, None] + (1 - alpha) * old[:, None, None]
    rgb = observed.round().to(torch.uint8)
    colour = premultiplied_foreground(rgb, alpha)
    expected = alpha * foreground[:, None, None]
    assert torch.allclose(colour[:, :, 26:30], expected[:, :, 26:30], atol=1.5)
    assert torch.equal(colour[:, :, 30:], rgb[:, :, 30:].float()) and float(colour[:, :, :26].abs().max()) == 0
    # Without it, the light old backdrop would brighten the edge by a (1 - a) x 215 levels (up to 54).
    assert float((rgb.float() * alpha - expected)[:, :, 26:30].max()) > 40


# ---- shadows -------------------------------------------------------------------------------------------------

def bar_alpha(size=(300, 240), box=(120, 60, 180, 200)):
    """A solid upright product standing on row box[3] (the floor line)."""
    alpha = torch.zeros(size[1], size[0])
    alpha[box[1]:box[3], box[0]:box[2]] = 1.0
    return alpha, box[3]


def test_contact_shadow_is_thin_dark_and_under_the_base():
    alpha, floor_y = bar_alpha()  # a 60 x 140 product
    contact = contact_shadow(alpha, floor_y, 0.55)
    visible = contact * (1 - alpha)
    row_means = visible.sum(dim=1)
    darkest_row = int(row_means.argmax())
    assert floor_y <= darkest_row <= floor_y + 2
    assert 0.4 < float(visible.max()) <= 1 - (1 - 0.55) * (1 - 0.55 * 0.4)
    # Darkest at the base, much lighter a few pixels down (the thin core), then the faint occlusion band.
    assert float(visible[floor_y + 1, 150]) > 2 * float(visible[floor_y + 5, 150]) > 0
    rows = torch.nonzero(contact.amax(dim=1) > 1 / 255).flatten()
    # Thin: within three occlusion thicknesses (3% of 140 px) of the floor line, nothing up the product.
    assert int(rows[0]) >= floor_y - 13 and int(rows[-1]) <= floor_y + 13
    assert float(contact[floor_y + 1, 150]) > float(contact[floor_y + 1, 122]) > 0  # fuller in the middle
    assert float(contact[:, :95].max()) == 0.0 and float(contact[:, 205:].max()) == 0.0


def centroid(weights):
    ys, xs = torch.meshgrid(
        torch.arange(weights.shape[0]).float(), torch.arange(weights.shape[1]).float(), indexing="ij"
    )
    total = weights.sum()
    return float((xs * weights).sum() / total), float((ys * weights).sum() / total)


def test_cast_shadow_falls_away_from_the_light_and_flips_with_it():
    alpha, floor_y = bar_alpha()
    left_light = cast_shadow(alpha, floor_y, Lighting(direction=135, contact=0))  # from behind-left
    right_light = cast_shadow(alpha, floor_y, Lighting(direction=45, contact=0))  # from behind-right
    for shadow in (left_light, right_light):
        visible = shadow * (1 - alpha)
        assert float(visible.max()) > 0.1
        # From behind: the shadow is on the floor in front, below the floor line; above it only its
        # softened edge (a pixel or two), nothing once quantised to 8 bits further up.
        assert float((visible[: floor_y - 4] * 255).round().max()) == 0.0
    x_left, y_left = centroid(left_light * (1 - alpha))
    x_right, y_right = centroid(right_light * (1 - alpha))
    assert x_left > 150 + 10 and x_right < 150 - 10
    assert y_left > floor_y and abs(y_left - y_right) < 2
    # Mirror images of each other about the product's centre line (x = 150).
    assert torch.allclose(left_light, right_light.flip(1).roll(0, 1), atol=0.02) or \
        abs((x_left - 150) + (x_right - 150)) < 2


def test_light_from_the_front_throws_the_shadow_behind_but_never_above_the_product():
    alpha, floor_y = bar_alpha(box=(120, 60, 180, 200))
    shadow = cast_shadow(alpha, floor_y, Lighting(direction=250, elevation=15))
    quantised = (shadow * 255).round()
    assert float(quantised[:60].max()) == 0.0  # the product's top is row 60: nothing above it
    assert float(quantised[floor_y + 6:].max()) == 0.0  # behind the product, not in front of it
    assert float((quantised * (1 - alpha)).max()) > 0  # some of it shows beside the product


def test_cast_shadow_is_lighter_and_softer_far_from_the_contact_line():
    alpha, floor_y = bar_alpha()
    shadow = cast_shadow(alpha, floor_y, Lighting(direction=90, elevation=30))  # straight towards the viewer
    column = shadow[floor_y:, 150]
    near, far = float(column[2]), float(column[30])
    assert near > far > 0
    edge_near = shadow[floor_y + 2, 110:140]  # across the shadow's side edge near and far
    edge_far = shadow[floor_y + 30, 110:140]
    width = lambda row: int(((row > 0.1 * row.max()) & (row < 0.9 * row.max())).sum())  # noqa: E731
    assert width(edge_far) > width(edge_near)


def test_no_darkening_far_from_the_product():
    alpha, floor_y = bar_alpha()
    shade = (darkening(alpha, floor_y, Lighting()) * 255).round()
    assert float(shade[:50].max()) == 0 and float(shade[:, :90].max()) == 0
    assert float(shade.max()) > 100


def test_a_flat_lay_casts_a_soft_drop_shadow_away_from_the_light_and_nothing_on_a_floor_line():
    alpha, floor_y = bar_alpha(size=(300, 300), box=(90, 90, 210, 210))  # a 120 px square lying flat
    from_top_left = flat_shadow(alpha, Lighting(pose="flat", direction=135, elevation=45))
    visible = from_top_left * (1 - alpha)
    # The drop shadow shows beside the product, on the side away from the light (right and down), and
    # not on the lit side beyond the outline's occlusion.
    assert float(visible.max()) > 0.1
    x, y = centroid(visible)
    assert x > 150 + 3 and y > 150 + 3
    assert float(visible[150, 211:216].mean()) > 3 * float(visible[150, 84:89].mean())
    # Short and soft: nothing past a few lifts and blurs from the outline; no long shadow down the frame.
    quantised = (from_top_left * 255).round()
    assert float(quantised[240:].max()) == 0 and float(quantised[:, 240:].max()) == 0
    # The light turned round turns the shadow round; the same through ``darkening``, whatever the floor line.
    from_bottom_right = darkening(alpha, floor_y, Lighting(pose="flat", direction=-45, elevation=45))
    x2, y2 = centroid(from_bottom_right * (1 - alpha))
    assert x2 < 150 - 3 and y2 < 150 - 3
    standing = darkening(alpha, floor_y, Lighting(direction=135, elevation=45))
    assert float((standing * 255).round()[250:].max()) > 0, "upright, the same light casts a long floor shadow"
    assert float(flat_shadow(alpha, Lighting(pose="flat", cast=0, contact=0)).max()) == 0


def test_each_piece_of_a_pair_stands_on_its_own_base():
    # A pair of shoes shot from above: the right one ends 40 rows higher than the left.
    alpha = torch.zeros(240, 300)
    alpha[80:200, 60:120] = 1.0
    alpha[60:160, 170:230] = 1.0
    parts = grounded_parts(alpha, 200)
    assert sorted(base for _, base in parts) == [160, 200]
    assert torch.equal(sum(part for part, _ in parts), alpha)
    shade = darkening(alpha, 200, Lighting(cast=0.0))
    # Both are grounded: a contact shadow right under each base, none under the higher one at the
    # lower floor line.
    assert float(shade[160, 200]) > 0.3 and float(shade[200, 90]) > 0.3
    assert float(shade[200, 200]) == 0.0
    # One piece alone is just itself on the given floor.
    single, _ = bar_alpha()
    assert [(p is single, b) for p, b in grounded_parts(single, 200)] == [(True, 200)]


def test_reflection_is_mirrored_below_the_floor_and_fades():
    height, width, floor_y = 200, 100, 150
    alpha = torch.zeros(height, width)
    alpha[50:floor_y, 30:70] = 1.0
    colour = torch.zeros(3, height, width)
    colour[0, 50:floor_y, 30:70] = 200.0  # red product
    colour[:, 140:floor_y, 30:70] = torch.tensor([0.0, 0.0, 200.0])[:, None, None]  # with a blue base band
    mirrored, mirrored_alpha = reflection(colour, alpha, floor_y, 0.4)
    assert float(mirrored_alpha[:floor_y].max()) == 0.0 and float(mirrored[:, :floor_y].abs().max()) == 0.0
    # The base band (10 rows) is reflected first, right under the floor line; red follows.
    assert float(mirrored[2, floor_y + 2, 50]) > float(mirrored[0, floor_y + 2, 50])
    assert float(mirrored[0, floor_y + 20, 50]) > float(mirrored[2, floor_y + 20, 50])
    strength = mirrored_alpha[floor_y:, 50]
    assert 0.3 < float(strength[0]) <= 0.4 + 1e-6
    assert all(float(strength[i]) >= float(strength[i + 1]) for i in range(len(strength) - 1))
    assert float(strength[45]) == 0.0  # gone after 40% of the product's height
    assert float(mirrored_alpha[:, :20].max()) == 0.0


# ---- backdrop ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sigma", [1.5, 6.0, 13.0])
def test_blur_has_the_asked_width_and_ends_in_exact_zeros(sigma):
    x = torch.zeros(1, 201, 201)
    x[0, 100, 100] = 1.0
    y = blur(x, sigma)[0]
    offsets = torch.arange(201.0) - 100
    spread = float(((y.sum(dim=0) * offsets**2).sum() / y.sum()).sqrt())
    assert spread == pytest.approx(sigma, rel=0.03) and float(y.sum()) == pytest.approx(1.0, abs=0.01)
    reach = math.ceil(3 * sigma) + 2 * math.ceil(sigma / 2) + 2
    assert float(y[:, : 100 - reach].abs().max()) == 0.0 and float(y[: 100 - reach].abs().max()) == 0.0


def test_depth_of_field_keeps_the_floor_sharp_and_softens_the_far_wall():
    backdrop = textured_backdrop((400, 400))
    size, floor = (400, 400), 0.85
    sharp = fit_backdrop(backdrop, size, floor=floor, depth_of_field=0)
    assert arr(sharp).tolist() == arr(ImageOps.fit(backdrop, size, method=Image.Resampling.LANCZOS)).tolist()
    soft = arr(fit_backdrop(backdrop, size, floor=floor, depth_of_field=1.5)).mean(axis=2)
    floor_row = round(floor * 400)
    near_floor = laplacian_variance(soft[floor_row - 10 : floor_row + 10])
    top = laplacian_variance(soft[:40])
    assert near_floor > 5 * top
    sharp_near_floor = laplacian_variance(arr(sharp).mean(axis=2)[floor_row - 10 : floor_row + 10])
    assert near_floor == pytest.approx(sharp_near_floor, rel=0.05)


def test_grain_is_seeded_and_subtle():
    backdrop = textured_backdrop()
    a = arr(fit_backdrop(backdrop, (120, 90), floor=0.8, depth_of_field=0, grain=0.02, seed=1))
    b = arr(fit_backdrop(backdrop, (120, 90), floor=0.8, depth_of_field=0, grain=0.02, seed=1))
    c = arr(fit_backdrop(backdrop, (120, 90), floor=0.8, depth_of_field=0, grain=0.02, seed=2))
    plain = arr(fit_backdrop(backdrop, (120, 90), floor=0.8, depth_of_field=0))
    assert (a == b).all() and not (a == c).all()
    assert 3 < np.abs(a - plain).mean() < 7  # about 0.02 x 255 x sqrt(2 / pi)
    # Monochrome: the same offset on all three channels (except where clipped).
    offset = a - plain
    unclipped = (a > 0).all(axis=2) & (a < 255).all(axis=2)
    assert (offset[unclipped][:, 0] == offset[unclipped][:, 1]).all()


# ---- the composite -------------------------------------------------------------------------------------------

def test_backdrop_is_exact_where_the_product_is_not():
    photo, soft, _ = product_photo()
    backdrop = textured_backdrop()
    layout = Layout(aspect="4:5", fill=0.7)
    scene = compose_scene(photo, exact_matte(soft), backdrop, layout=layout, lighting=None, seed=4)
    alpha = scene.alpha.numpy()
    expected = arr(fit_backdrop(backdrop, scene.image.size, floor=scene.info["floor"], depth_of_field=1.0, seed=4))
    out = arr(scene.image)
    assert (alpha == 0).sum() > 0.4 * alpha.size
    assert (out[alpha == 0] == expected[alpha == 0]).all()
    assert scene.info["pure_background"] is True and scene.info["backdrop"] == "image"
    assert scene.info["canvas"] == scene.image.size and scene.info["moved"] is None


def test_product_pixels_are_the_photo_pixels_at_scale_one():
    photo, soft, _ = product_photo()
    matte = exact_matte(soft)
    scene = compose_scene(
        photo, matte, textured_backdrop(), layout=Layout(fill=0.75), lighting=Lighting(reflection=0.2)
    )
    assert scene.scale == 1.0
    src = np.asarray(matte)
    rows, cols = np.nonzero(src)
    dy, dx = scene.box[1] - rows.min(), scene.box[0] - cols.min()
    ys, xs = np.nonzero(src == 255)
    assert len(ys) > 5000
    assert (arr(scene.image)[ys + dy, xs + dx] == arr(photo)[ys, xs]).all()


def test_white_preset_is_pure_white_outside_the_product_and_shadows_stay_near_it():
    photo, soft, _ = product_photo()
    matte = exact_matte(soft)
    layout = PRESETS["taobao-white-800"].layout()
    plain = compose_scene(photo, matte, "white", layout=layout, lighting=None)
    alpha = plain.alpha.numpy()
    assert plain.image.size == (800, 800)
    assert (arr(plain.image)[alpha == 0] == 255).all() and plain.info["pure_background"] is True
    lit = compose_scene(photo, matte, "white", layout=layout, lighting=Lighting())
    out = arr(lit.image)
    assert torch.equal(lit.alpha, plain.alpha)
    darkened = (out < 255).any(axis=2) & (alpha == 0)
    assert darkened.sum() > 1000 and lit.info["pure_background"] is False
    left, top, right, bottom = lit.box
    ys, xs = np.nonzero(darkened)
    assert ys.min() >= top and xs.min() >= left - 40 and xs.max() <= right + 0.6 * (bottom - top)
    assert (out[:top] == 255).all() and (out[:, : left - 40] == 255).all()


def gain(factor):
    def harmonise(rgb, alpha, backdrop):
        assert rgb.shape == backdrop.shape and alpha.shape == rgb.shape[1:]
        assert float(rgb.min()) >= 0 and float(rgb.max()) <= 1 and float(backdrop.max()) <= 1
        return rgb * factor, {"gain": factor}
    return harmonise


def test_harmonise_changes_only_product_pixels_and_never_the_alpha():
    photo, soft, _ = product_photo()
    matte = exact_matte(soft)
    backdrop = textured_backdrop()
    layout, lighting = Layout(aspect="4:5", fill=0.7), Lighting(reflection=0.0)
    plain = compose_scene(photo, matte, backdrop, layout=layout, lighting=lighting)
    toned = compose_scene(photo, matte, backdrop, layout=layout, lighting=lighting, harmonise=gain(0.8))
    alpha = toned.alpha.numpy()
    assert torch.equal(toned.alpha, plain.alpha)
    assert torch.equal(toned.alpha, place_on_floor(photo, matte, layout).alpha)
    a, b = arr(plain.image), arr(toned.image)
    assert (a[alpha == 0] == b[alpha == 0]).all()
    assert (b[alpha == 255] < a[alpha == 255]).all(axis=1).mean() > 0.95
    assert toned.info["harmonisation"] == {"gain": 0.8} and plain.info["harmonisation"] is None
    # A harmoniser cannot paint outside the product: its output is premultiplied by the unchanged alpha.
    paint = compose_scene(photo, matte, backdrop, layout=layout, lighting=lighting,
                          harmonise=lambda rgb, al, bd: (torch.ones_like(rgb), {}))
    assert (arr(paint.image)[alpha == 0] == a[alpha == 0]).all()


def test_shadows_and_reflection_leave_the_alpha_and_the_far_backdrop_alone():
    photo, soft, _ = product_photo()
    matte = exact_matte(soft)
    backdrop = textured_backdrop()
    layout = Layout(aspect="1:1", fill=0.6, long_side=300)
    plain = compose_scene(photo, matte, backdrop, layout=layout, lighting=None)
    lit = compose_scene(photo, matte, backdrop, layout=layout, lighting=Lighting(direction=135, reflection=0.3))
    assert torch.equal(lit.alpha, plain.alpha) and lit.scale == plain.scale != 1.0
    a, b = arr(plain.image), arr(lit.image)
    changed = (a != b).any(axis=2)
    left, top, right, bottom = lit.box
    assert not changed[: top].any() and not changed[:, : left - 20].any()
    quarter = (right - left) // 4  # the rounded corners do not touch the floor
    assert changed[bottom : bottom + 10, left + quarter : right - quarter].all()  # contact shadow, reflection
    # The floor line is where the product's body ends, and the info says so.
    solid_rows = np.nonzero((lit.alpha.numpy() >= 128).sum(axis=1) >= 2)[0]
    assert lit.info["floor_y"] == round(layout.floor * 300) and abs(solid_rows[-1] + 1 - lit.info["floor_y"]) <= 1


def test_speed_of_a_full_size_scene(capsys):
    """Not an assertion: the figure the docs quote (1024 x 1365 photo onto a 1365 px square, 1 thread)."""
    photo, soft, hard = product_photo(size=(1024, 1365), box=(200, 150, 824, 1250), blur=3.0)
    backdrop = textured_backdrop((256, 256))
    # CPU seconds as well as wall seconds: on a shared machine the wall clock also counts waiting.
    start, cpu = time.perf_counter(), time.process_time()
    matte = soft_matte(photo, hard)
    matte_s, matte_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    scene = compose_scene(photo, matte, backdrop, layout=Layout(aspect="1:1", fill=0.85, long_side=1365),
                          lighting=Lighting(reflection=0.2), harmonise=gain(1.0), grain=0.01)
    compose_s, compose_cpu = time.perf_counter() - start, time.process_time() - cpu
    assert scene.image.size == (1365, 1365)
    with capsys.disabled():
        print(f"\n[scenes speed] soft_matte 1024x1365: {matte_s:.3f} s ({matte_cpu:.3f} s CPU); compose_scene "
              f"onto 1365x1365: {compose_s:.3f} s ({compose_cpu:.3f} s CPU)")
    assert math.isfinite(compose_s)
