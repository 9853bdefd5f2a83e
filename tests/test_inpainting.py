"""mlcore.inpainting: random masks, the pre-fill, what training learns and the Inpainter's promises (pixels
outside the mask unchanged, empty masks, size mismatch, alpha). What every kind shares (train, save, resume,
load, apply) is in test_model_contract.py."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

from mlcore.inpainting.config import InpaintConfig
from mlcore.inpainting.masks import MASK_SIZES, random_mask
from mlcore.inpainting.networks import InpaintNet, smooth_fill
from mlcore.inpainting.sampler import Inpainter
from mlcore.training import Trainer

from .synthetic import dataset

# Tiny on purpose: the tests check behaviour, not quality, on 2 shared cores.
TINY = dict(width=8, levels=2, dilations=[2], crop_size=32)


def photos():
    """The synthetic squares with horizontal stripes: a smooth fill cannot continue them, so there is something
    for the network to learn (on flat colours the pre-fill alone is already exact)."""
    images, _ = dataset(size=48, count=6)
    images[:, :, (torch.arange(48) // 3) % 2 == 0, :] //= 3
    return list(images)


@pytest.fixture(scope="module")
def checkpoint():
    trainer = Trainer(InpaintConfig(**TINY), photos(), batch_size=4, seed=3)
    trainer.fit(3)
    buffer = io.BytesIO()
    trainer.save(buffer)
    return buffer.getvalue()


def odd_photo(mode="RGB"):
    rng = np.random.default_rng(0)
    channels = 4 if mode == "RGBA" else 3
    return Image.fromarray(rng.integers(0, 256, (53, 71, channels), dtype=np.uint8), mode)


def brush_mask(size):
    mask = Image.new("L", size, 0)
    mask.paste(255, (9, 7, 40, 30))
    mask.paste(128, (50, 40, 60, 45))  # the threshold value counts as a hole
    mask.paste(127, (0, 45, 8, 53))  # just below it does not
    return mask


@pytest.mark.parametrize("size", sorted(MASK_SIZES))
def test_masks_are_reproducible_per_seed_and_within_coverage(size):
    low, high = MASK_SIZES[size]
    masks = [random_mask(torch.Generator().manual_seed(seed), 64, 80, size) for seed in range(40)]
    again = random_mask(torch.Generator().manual_seed(7), 64, 80, size)
    assert torch.equal(masks[7], again)
    assert not torch.equal(masks[7], masks[8])
    coverage = [float(m.float().mean()) for m in masks]
    assert all(low <= c <= high for c in coverage), (min(coverage), max(coverage))
    assert masks[0].dtype == torch.bool and masks[0].shape == (64, 80)
    with pytest.raises(ValueError, match="size must be one of"):
        random_mask(torch.Generator(), 64, 80, "huge")


def test_smooth_fill_keeps_visible_pixels_and_fills_flat_regions_exactly():
    image = torch.rand(1, 3, 20, 27)
    mask = torch.zeros(1, 1, 20, 27)
    mask[..., 5:12, 3:19] = 1
    filled = smooth_fill(image, mask)
    assert torch.equal(filled[..., mask[0, 0] == 0], image[..., mask[0, 0] == 0])
    flat = torch.full((1, 3, 20, 27), 0.3)
    assert torch.allclose(smooth_fill(torch.where(mask > 0, torch.zeros_like(flat), flat), mask), flat, atol=1e-6)


def test_trainer_lowers_the_loss_on_a_fixed_batch():
    trainer = Trainer(InpaintConfig(**TINY), photos(), batch_size=4, lr=1e-3, seed=0)
    objective = trainer.objective
    batch = objective.sample_batch(torch.Generator().manual_seed(5))
    assert batch[0].shape == (4, 3, 32, 32) and batch[1].shape == (4, 1, 32, 32)
    with torch.no_grad():
        before = float(objective.terms(batch)["loss"])
    for _ in range(20):
        trainer.train_step(batch=batch)
    with torch.no_grad():
        after = float(objective.terms(batch)["loss"])
    assert after < 0.8 * before, (before, after)
    summary = trainer.fit(2)
    assert summary["steps_done"] == 2 and trainer.step == 22
    assert set(trainer.history) == {"step", "loss", "hole", "valid"}


def test_trainer_rejects_photos_smaller_than_the_crop():
    with pytest.raises(ValueError, match="at least 32 x 32"):
        Trainer(InpaintConfig(**TINY), [torch.zeros(3, 20, 40, dtype=torch.uint8)])


def test_repair_changes_only_pixels_inside_the_mask(checkpoint):
    inpainter = Inpainter.from_checkpoint(checkpoint)
    photo, mask = odd_photo(), brush_mask((71, 53))
    repaired = inpainter.repair(photo, mask)
    assert repaired.mode == "RGB" and repaired.size == photo.size
    before, after = np.asarray(photo), np.asarray(repaired)
    hole = np.asarray(mask) >= 128
    assert np.array_equal(after[~hole], before[~hole])  # every pixel outside, bit for bit
    assert (after[hole] != before[hole]).any()  # and the hole was actually filled (random noise in, a fill out)


def test_repair_of_a_huge_region_is_shrunk_and_still_composited(checkpoint, monkeypatch):
    import mlcore.inpainting.sampler as module

    monkeypatch.setattr(module, "MAX_WORK_SIDE", 24)  # forces the shrink-and-enlarge path on a small photo
    inpainter = Inpainter.from_checkpoint(checkpoint)
    photo, mask = odd_photo(), brush_mask((71, 53))
    after, hole = np.asarray(inpainter.repair(photo, mask)), np.asarray(mask) >= 128
    assert np.array_equal(after[~hole], np.asarray(photo)[~hole])


def test_empty_mask_returns_the_photo_unchanged(checkpoint):
    inpainter = Inpainter.from_checkpoint(checkpoint)
    photo = odd_photo()
    repaired = inpainter.repair(photo, Image.new("L", photo.size, 127))
    assert np.array_equal(np.asarray(repaired), np.asarray(photo))


def test_mask_of_another_size_is_a_clear_error(checkpoint):
    inpainter = Inpainter.from_checkpoint(checkpoint)
    with pytest.raises(ValueError, match="mask is 70 x 53, the photo 71 x 53"):
        inpainter.repair(odd_photo(), Image.new("L", (70, 53), 255))


def test_rgba_keeps_its_alpha(checkpoint):
    inpainter = Inpainter.from_checkpoint(checkpoint)
    photo, mask = odd_photo("RGBA"), brush_mask((71, 53))
    repaired = inpainter.repair(photo, mask)
    assert repaired.mode == "RGBA"
    before, after = np.asarray(photo), np.asarray(repaired)
    assert np.array_equal(after[..., 3], before[..., 3])
    hole = np.asarray(mask) >= 128
    assert np.array_equal(after[~hole], before[~hole])


def test_network_needs_aligned_sides():
    net = InpaintNet(InpaintConfig(**TINY))
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 3, 30, 32), torch.zeros(1, 1, 30, 32))
