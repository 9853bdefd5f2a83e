"""Background replacement (mlcore.background): composing on white / colour / backdrop, the border model,
composites, the segmentation objective and what it learns, input modes, and the benchmark's smoke run. What
every kind shares (train, save, resume, load, apply) is in test_model_contract.py."""
import io
import json
import math

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from mlcore.background import Segmenter, Shadow, on_background, place
from mlcore.background import composites, morphology
from mlcore.background.classical import border_matte
from mlcore.background.config import SegmenterConfig
from mlcore.background.images import prepare
from mlcore.background.objective import mask_iou, segmentation_terms, soft_dice_loss
from mlcore.background.refine import box_mean
from mlcore.training import Trainer

pytestmark = pytest.mark.slow

WHITE = (255, 255, 255)


def product_photo(size=(160, 200), backdrop=(200, 205, 210), seed=0):
    """A patterned 'shirt' on a plain, slightly graded and noisy backdrop, and its true mask ("L")."""
    width, height = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(-6, 6, height)[:, None, None]
    pixels = np.clip(np.array(backdrop)[None, None, :] + ramp + rng.normal(0, 2, (height, width, 3)), 0, 255)
    mask = Image.new("L", size, 0)
    shape = [(0.3, 0.15), (0.7, 0.15), (0.9, 0.35), (0.78, 0.45), (0.72, 0.38), (0.72, 0.85), (0.28, 0.85),
             (0.28, 0.38), (0.22, 0.45), (0.1, 0.35)]
    ImageDraw.Draw(mask).polygon([(x * width, y * height) for x, y in shape], fill=255)
    stripes = (np.arange(height)[:, None] // 6 % 2) * np.array([60, 0, 20])[None, :]
    garment = np.clip(np.array([150, 30, 40])[None, None, :] + stripes[:, None, :] + rng.normal(0, 3, (height, width, 3)), 0, 255)
    inside = np.asarray(mask)[:, :, None] > 127
    image = np.where(inside, garment, pixels).astype(np.uint8)
    return Image.fromarray(image), mask


def soft_mask(size=(120, 90), box=(30, 20, 90, 70)):
    """An ellipse mask with a blurred (soft) edge and an exactly-zero outside."""
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse(box, fill=255)
    blurred = np.asarray(mask.filter(ImageFilter.GaussianBlur(1.5)))
    return Image.fromarray(np.where(np.asarray(mask) > 0, blurred, 0).astype(np.uint8))


def noise_image(size=(120, 90), seed=1):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def arr(image):
    return np.asarray(image).astype(np.int32)


# ---- compose ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("canvas", [None, (300, 300), (257, 181), (40, 40)])
def test_white_is_exact_wherever_the_placed_mask_is_zero(canvas):
    image, mask = noise_image(), soft_mask()
    out = on_background(image, mask, background="white", canvas=canvas, fill=0.8)
    placed = place(image, mask, canvas=canvas, fill=0.8)
    alpha = placed.alpha.numpy()
    assert out.mode == "RGB" and out.size == (alpha.shape[1], alpha.shape[0])
    outside = alpha == 0
    assert outside.sum() > 0.3 * alpha.size
    assert (arr(out)[outside] == 255).all()
    assert out.info["pure_background"] is True
    # The mask is not smeared to make this easy: alpha > 0 covers the scaled ellipse and a thin rim only.
    scale = placed.scale
    ellipse_area = math.pi * 30 * 25 * scale * scale
    assert (alpha > 0).sum() <= ellipse_area + 2 * math.pi * 30 * scale * (1.5 * 3 * scale + 2) + 10


def test_product_pixels_equal_the_photo_when_nothing_is_resampled():
    image, mask = noise_image(), soft_mask()
    out = arr(on_background(image, mask, canvas=None, fill=0.85))
    placed = place(image, mask, canvas=None, fill=0.85)
    assert placed.scale == 1.0
    left, top, right, bottom = placed.box
    src_mask = np.asarray(mask)
    rows, cols = np.nonzero(src_mask)
    dy, dx = top - rows.min(), left - cols.min()
    full = src_mask == 255
    ys, xs = np.nonzero(full)
    assert len(ys) > 1000
    assert (out[ys + dy, xs + dx] == arr(image)[ys, xs]).all()


@pytest.mark.parametrize("canvas,fill", [((400, 300), 0.8), ((300, 400), 0.85), ((500, 500), 0.6), (None, 0.85)])
def test_fill_share_and_centring(canvas, fill):
    image, mask = noise_image((200, 150)), soft_mask((200, 150), (20, 40, 180, 110))
    placed = place(image, mask, canvas=canvas, fill=fill)
    height, width = placed.alpha.shape
    left, top, right, bottom = placed.box
    box_w, box_h = right - left, bottom - top
    limiting = max(box_w / width, box_h / height)
    # Within the pixel or two the soft edge adds or loses at the new scale.
    assert abs(limiting - fill) <= 3 / min(width, height)
    assert abs((left + right) / 2 - width / 2) <= 1.0
    assert abs((top + bottom) / 2 - height / 2) <= 1.0


@pytest.mark.parametrize("colour", [(12, 34, 56), "#0c2238"])
def test_brand_colour_is_exact(colour):
    image, mask = noise_image(), soft_mask()
    out = arr(on_background(image, mask, background=colour, canvas=(200, 150)))
    alpha = place(image, mask, canvas=(200, 150)).alpha.numpy()
    assert (out[alpha == 0] == np.array([12, 34, 56])).all()


def test_backdrop_image_shows_where_the_mask_is_zero():
    image, mask = noise_image(), soft_mask()
    backdrop = noise_image((90, 60), seed=7)
    out = arr(on_background(image, mask, background=backdrop, canvas=(200, 150)))
    alpha = place(image, mask, canvas=(200, 150)).alpha.numpy()
    expected = arr(ImageOps.fit(backdrop, (200, 150), method=Image.Resampling.LANCZOS))
    assert (out[alpha == 0] == expected[alpha == 0]).all()


def test_a_drawn_backdrop_shows_exactly_where_the_mask_is_zero_and_is_checked():
    image, mask = noise_image(), soft_mask()
    drawn = torch.rand(3, 150, 200, generator=torch.Generator().manual_seed(3))
    out = arr(on_background(image, mask, background=lambda h, w: drawn, canvas=(200, 150)))
    alpha = place(image, mask, canvas=(200, 150)).alpha.numpy()
    expected = (drawn * 255).round().permute(1, 2, 0).numpy().astype(np.int32)
    assert (out[alpha == 0] == expected[alpha == 0]).all()
    with pytest.raises(ValueError, match="3 x 150 x 200"):
        on_background(image, mask, background=lambda h, w: torch.zeros(3, w, h), canvas=(200, 150))


def test_studio_sweep_is_a_smooth_wall_bending_into_a_darker_floor():
    from mlcore.background.textures import studio_sweep

    colour = torch.tensor([0.9, 0.8, 0.7])
    sweep = studio_sweep(colour, 300, 200, torch.Generator().manual_seed(0))
    assert sweep.shape == (3, 300, 200) and 0 <= sweep.min() and sweep.max() <= 1
    assert torch.equal(sweep, studio_sweep(colour, 300, 200, torch.Generator().manual_seed(0)))
    levels = (sweep * 255).round()
    assert levels[:, 120, 100].sum() > levels[:, 290, 5].sum() + 30, "lit wall behind the product, darker floor corner"
    # Smooth: no step between neighbouring rows or columns beyond two levels (no banding, no seam at the bend).
    assert levels.diff(dim=1).abs().max() <= 2 and levels.diff(dim=2).abs().max() <= 2
    # The colour's hue is kept: channel order as in the colour everywhere.
    assert (levels[0] >= levels[1]).all() and (levels[1] >= levels[2]).all()


def test_shadow_is_only_there_when_asked_and_is_reported():
    image, mask = noise_image(), soft_mask()
    plain = on_background(image, mask, canvas=(200, 200))
    shaded = on_background(image, mask, canvas=(200, 200), shadow=Shadow(offset=(0.0, 0.05), blur=0.02, opacity=0.5))
    assert plain.info["pure_background"] is True and shaded.info["pure_background"] is False
    alpha = place(image, mask, canvas=(200, 200)).alpha.numpy()
    darker = (arr(shaded) < 255).any(axis=2) & (alpha == 0)
    assert darker.sum() > 100  # the shadow shows below the product
    assert (arr(shaded)[0:5, :] == 255).all()  # far from it, white stays exact
    assert (arr(shaded)[alpha == 255] == arr(plain)[alpha == 255]).all()  # the product is untouched
    assert on_background(image, mask, canvas=(200, 200), shadow=True).info["pure_background"] is False
    with pytest.raises(ValueError, match="shadow"):
        on_background(image, mask, background="transparent", shadow=True)


def test_transparent_cut_out_keeps_mask_and_colours():
    image, mask = noise_image(), soft_mask()
    out = on_background(image, mask, background="transparent", canvas=None)
    assert out.mode == "RGBA"
    placed = place(image, mask, canvas=None)
    rgba = arr(out)
    assert (rgba[:, :, 3] == placed.alpha.numpy()).all()
    left, top, _, _ = placed.box
    src = np.asarray(mask)
    rows, cols = np.nonzero(src)
    ys, xs = np.nonzero(src == 255)
    assert (rgba[ys + top - rows.min(), xs + left - cols.min(), :3] == arr(image)[ys, xs]).all()


def test_bad_arguments_are_refused_with_the_reason():
    image, mask = noise_image(), soft_mask()
    for kwargs, words in [
        ({"fill": 0}, "fill"), ({"fill": 1.5}, "fill"), ({"canvas": (0, 10)}, "canvas"), ({"canvas": "big"}, "canvas"),
        ({"background": "blue"}, "background"), ({"background": (256, 0, 0)}, "colour"), ({"shadow": "yes"}, "shadow"),
    ]:
        with pytest.raises(ValueError, match=words):
            on_background(image, mask, **kwargs)
    with pytest.raises(ValueError, match="mask is 10 x 10"):
        on_background(image, Image.new("L", (10, 10), 255))
    with pytest.raises(ValueError, match="empty"):
        on_background(image, Image.new("L", image.size, 0))
    with pytest.raises(ValueError, match="no mask"):
        on_background(image)


# ---- input modes --------------------------------------------------------------------------------------------

def test_rgba_and_transparent_palette_use_their_own_alpha():
    image, mask = noise_image(), soft_mask()
    rgba = image.copy()
    rgba.putalpha(mask)
    assert np.array_equal(np.asarray(Segmenter.classical().mask(rgba)), np.asarray(mask))
    assert np.array_equal(arr(on_background(rgba, canvas=(150, 150))), arr(on_background(image, mask, canvas=(150, 150))))
    palette = rgba.convert("RGB").quantize(16)
    palette.info["transparency"] = 0
    _, alpha = prepare(palette)
    assert alpha is not None and np.array_equal(np.asarray(alpha) == 0, np.asarray(palette) == 0)
    opaque = image.convert("RGBA")  # fully opaque: not a cut-out, so it gets segmented
    assert prepare(opaque)[1] is None


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "1", "LA", "I;16"])
def test_other_modes_are_segmented_and_composed(mode):
    photo, truth = product_photo()
    if mode == "1":  # a dithered photo has no plain backdrop; a bilevel drawing does
        image = ImageOps.invert(truth).convert("1")
    elif mode == "I;16":
        image = Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257)
    else:
        image = photo.convert(mode)
    mask = Segmenter.classical().mask(image)
    assert mask.mode == "L" and mask.size == photo.size
    out = on_background(image, mask, canvas=(100, 100))
    assert out.mode == "RGB" and out.size == (100, 100)


def test_sixteen_bit_is_scaled_not_clipped():
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    rgb, _ = prepare(Image.fromarray(values))
    assert arr(rgb)[0, :, 0].tolist() == [0, 1, 128, 255]


def test_unreadable_inputs_fail_with_a_reason():
    with pytest.raises(ValueError, match="floating-point"):
        prepare(Image.new("F", (8, 8)))
    with pytest.raises(ValueError, match="PIL image"):
        Segmenter.classical().mask(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="outside 0..65535"):
        prepare(Image.fromarray(np.array([[0, 70000]], dtype=np.int32)))


def test_exif_rotation_is_applied_to_mask_and_result():
    photo, true_mask = product_photo((160, 200))
    sideways = photo.rotate(90, expand=True)  # stored on its side, as a phone does
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buffer = io.BytesIO()
    sideways.save(buffer, format="PNG", exif=exif.tobytes())
    stored = Image.open(io.BytesIO(buffer.getvalue()))
    assert stored.size == (200, 160)
    mask = Segmenter.classical().mask(stored)
    assert mask.size == (160, 200)  # upright
    assert mask_iou(torch.from_numpy(np.asarray(mask) / 255), torch.from_numpy(np.asarray(true_mask) / 255)) > 0.95
    out = on_background(stored, mask, canvas=None)
    assert out.size[0] == out.size[1]


# ---- the border model ---------------------------------------------------------------------------------------

def test_classical_mask_of_a_product_on_a_plain_backdrop():
    photo, truth = product_photo()
    matte = border_matte(photo)
    assert matte.confident, matte.reasons
    assert mask_iou(matte.alpha, torch.from_numpy(np.asarray(truth) / 255.0)) > 0.95


def test_classical_is_not_confident_on_a_textured_backdrop():
    photo, _ = product_photo()
    gen = torch.Generator().manual_seed(0)
    from mlcore.background.textures import checks

    texture = (checks(gen, photo.height, photo.width) * 255).round().byte().permute(1, 2, 0).numpy()
    _, mask = product_photo()
    busy = Image.composite(photo, Image.fromarray(texture), mask)
    matte = border_matte(busy)
    assert not matte.confident and matte.reasons


def flood_labels(mask):
    """Reference 8-connected labelling by breadth-first search."""
    height, width = mask.shape
    labels = -np.ones((height, width), np.int64)
    for y in range(height):
        for x in range(width):
            if mask[y, x] and labels[y, x] < 0:
                stack, labels[y, x] = [(y, x)], y * width + x
                while stack:
                    cy, cx = stack.pop()
                    for ny in range(cy - 1, cy + 2):
                        for nx in range(cx - 1, cx + 2):
                            if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and labels[ny, nx] < 0:
                                labels[ny, nx] = y * width + x
                                stack.append((ny, nx))
    return labels


def test_connected_components_match_a_flood_fill():
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        mask = torch.rand(23, 31, generator=gen) > 0.55
        assert np.array_equal(morphology.label_components(mask).numpy(), flood_labels(mask.numpy()))


def test_hole_filling_fills_small_enclosed_holes_only():
    mask = torch.zeros(40, 40, dtype=torch.bool)
    mask[5:35, 5:35] = True
    mask[10:12, 10:12] = False  # a small hole
    mask[18:30, 18:30] = False  # a large one
    filled = morphology.fill_holes(mask, max_area=10)
    assert filled[10:12, 10:12].all() and not filled[18:30, 18:30].any()
    open_gap = mask.clone()
    open_gap[20:22, 0:20] = False  # reaches the border: not a hole
    assert not morphology.fill_holes(open_gap, max_area=10_000)[20:22, 0:5].any()


def test_box_mean_matches_average_pooling():
    x = torch.rand(17, 23, dtype=torch.float64)
    reference = torch.nn.functional.avg_pool2d(x[None, None], 5, stride=1, padding=2, count_include_pad=False)[0, 0]
    assert torch.allclose(box_mean(x, 2), reference, atol=1e-12)


# ---- composites -------------------------------------------------------------------------------------------

def test_decontaminate_recovers_the_foreground_colour():
    foreground, backdrop = torch.tensor([0.2, 0.6, 0.1]), torch.tensor([0.9, 0.1, 0.1])
    alpha = torch.tensor([[0.0, 0.3, 0.7, 1.0]])
    observed = alpha[None] * foreground[:, None, None] + (1 - alpha[None]) * backdrop[:, None, None]
    solved = composites.decontaminate(observed, alpha, backdrop[:, None, None].expand(3, 1, 4))
    assert torch.allclose(solved[:, 0, 1:], foreground[:, None].expand(3, 3), atol=1e-5)
    assert torch.equal(solved[:, 0, 0], observed[:, 0, 0])


def test_placement_keeps_the_product_inside_at_the_asked_size(monkeypatch):
    rgba = torch.zeros(4, 50, 30)
    rgba[:, 5:45, 5:25] = 1.0

    def boxes(count=20):
        gen = torch.Generator().manual_seed(0)
        for _ in range(count):
            ys, xs = torch.nonzero(composites.place(rgba, 90, 120, gen, fill=(0.5, 0.8))[3] > 0.5, as_tuple=True)
            yield int(ys.min()), int(ys.max()), int(xs.min()), int(xs.max())

    # Upright and unstretched, so the box is exactly what ``fill`` and the position range promise.
    monkeypatch.setattr(composites, "MAX_TILT_DEGREES", 0.0)
    monkeypatch.setattr(composites, "MAX_STRETCH", 1.0)
    shares = []
    for top, bottom, left, right in boxes():
        assert top >= 0 and left >= 0 and bottom <= 89 and right <= 119
        shares.append(max((right - left + 1) / 120, (bottom - top + 1) / 90))
    assert 0.5 - 0.02 <= min(shares) and max(shares) <= 0.8 + 0.02 and max(shares) - min(shares) > 0.1


def test_training_data_from_photos():
    plain = [product_photo(seed=i)[0] for i in range(2)]
    _, mask = product_photo()
    texture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 160, 3), dtype=np.uint8))
    busy = Image.composite(plain[0], texture, mask)
    data = composites.training_data(iter([plain[0], busy, plain[1]]), 32)
    assert data.confident == [True, False, True]
    assert data.cutouts.shape == (2, 4, 32, 32) and data.cutouts.dtype == torch.uint8
    assert data.backdrops.shape == (2, 3, 32, 32) and sum(data.reasons.values()) >= 1
    with pytest.raises(ValueError, match="plain enough backdrop"):
        composites.training_data([busy], 32)


def synthetic_cutouts(count=6, side=32):
    gen = torch.Generator().manual_seed(5)
    bank = torch.zeros(count, 4, side, side, dtype=torch.uint8)
    y, x = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    for i in range(count):
        radius = side * (0.25 + 0.2 * float(torch.rand((), generator=gen)))
        inside = ((y - side / 2) ** 2 + ((x - side / 2) * (1 + 0.5 * (i % 2))) ** 2) <= radius**2
        bank[i, :3] = torch.randint(0, 256, (3, 1, 1), generator=gen, dtype=torch.uint8)
        bank[i, 3] = inside.to(torch.uint8) * 255
    return bank


# ---- objective, network, trainer, checkpoints -------------------------------------------------------------

def test_bce_and_dice_values():
    target = torch.zeros(2, 1, 4, 4)
    target[0, :, :2] = 1.0
    confident = (target * 2 - 1) * 20.0
    terms = segmentation_terms(confident, target)
    assert terms["bce"] < 1e-6 and terms["dice"] < 1e-6
    zero = torch.zeros_like(target)
    # sigmoid(0) = 0.5 everywhere: image 0 has Dice (2 * 4 + 1) / (8 + 8 + 1), image 1 (0 + 1) / (8 + 1).
    expected = 1 - ((2 * 4 + 1) / (8 + 8 + 1) + 1 / (8 + 1)) / 2
    assert math.isclose(float(soft_dice_loss(zero, target)), expected, rel_tol=1e-6)
    assert math.isclose(float(segmentation_terms(zero, target)["bce"]), math.log(2), rel_tol=1e-6)


def tiny_config():
    return SegmenterConfig(image_size=32, widths=[8, 16])


def test_config_round_trip_and_validation():
    config = tiny_config()
    assert SegmenterConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="multiple"):
        SegmenterConfig(image_size=30, widths=[8, 16])
    with pytest.raises(ValueError, match="unknown"):
        SegmenterConfig.from_dict({**config.to_dict(), "depth": 3})


def test_network_learns_on_tiny_composites():
    trainer = Trainer(tiny_config(), synthetic_cutouts(), batch_size=8, lr=3e-3, seed=0)
    trainer.fit(60, log_every=10)
    loss = trainer.history["loss"]
    assert len(loss) == 6 and all(math.isfinite(v) for v in loss)
    assert loss[-1] < 0.7 * loss[0]


def test_segmenter_methods_that_use_the_network_need_one():
    with pytest.raises(ValueError, match="network"):
        Segmenter(method="combined")


# ---- benchmark smoke run ------------------------------------------------------------------------------------

def test_background_bench_quick_run_writes_its_table(tmp_path):
    from .test_bench import demo_dataset, run_script

    data = demo_dataset(tmp_path / "data")
    out = tmp_path / "out"
    done = run_script("bench/background.py", "--quick", "--data", str(data), "--out", str(out), timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    [json_path] = out.glob("*-background.json")
    result = json.loads(json_path.read_text())
    for name in ("ours", "network", "classical", "grabcut"):
        assert 0.0 <= result["iou"][name]["mean_iou"] <= 1.0, name
        assert result["speed"][name]["median_seconds"] > 0, name
    assert result["data"]["train_cutouts"] >= 1 and result["data"]["test_composites"] >= 1
    table = json_path.with_suffix(".md").read_text()
    assert [row.split("|")[1].strip() for row in table.splitlines()[4:8]] == ["ours", "network", "classical", "grabcut"]


# ---- automatic speck detection ----------------------------------------------------------------------------

def specked(size=(320, 400), spots=((30, 40), (280, 60), (40, 360), (290, 350))):
    """``product_photo`` with small dark specks on its backdrop at ``spots`` (x, y)."""
    image, mask = product_photo(size)
    draw = ImageDraw.Draw(image)
    for x, y in spots:
        draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=(90, 80, 70))
    return image, mask, spots


def test_specks_on_a_plain_backdrop_are_found_and_nothing_on_the_product():
    from mlcore.background.specks import find_backdrop_specks

    image, mask, spots = specked()
    found = find_backdrop_specks(image)
    assert found.mask is not None, found.reason
    assert found.count == len(spots)
    assert all(bool(found.mask[y, x]) for x, y in spots), "every speck is marked"
    assert not (found.mask & torch.from_numpy(np.asarray(mask) > 0)).any(), "never on the product"
    assert found.mask.float().mean() < 0.01
    clean, _ = product_photo((320, 400))
    assert find_backdrop_specks(clean).count == 0, "a clean backdrop has none"


def test_speck_detection_refuses_photos_it_cannot_judge():
    from mlcore.background.specks import find_backdrop_specks

    refused = find_backdrop_specks(noise_image((200, 200)))
    assert refused.mask is None and refused.count == 0 and "not a plain backdrop" in refused.reason
    with pytest.raises(ValueError, match="no mask"):
        refused.as_image()
