"""Enhance's named tasks (mlcore.restoration.tasks): each runs what won it on held-out photos, the untouched
photo included; "auto" measures what a photo needs (mlcore.restoration.detect)."""
from pathlib import Path

import mlcore  # noqa: F401  (first: it sets the OpenMP wait policy before torch loads)
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor, to_pil_image

from mlcore.photos import to_float, to_uint8
from mlcore.restoration import classical, detect
from mlcore.restoration.degrade import NAMED
from mlcore.restoration.noise_level import noise_sigma
from mlcore.restoration.tasks import CORRECTIONS, TASKS, enhance
from mlcore.method_choice import choose

from .synthetic import one_thread  # noqa: F401  (a fixture)

CATALOGUE = Path(__file__).resolve().parent.parent / "shop" / "demo_catalogue"


def catalogue_photo(index: int = 0) -> Image.Image:
    path = sorted(CATALOGUE.glob("*/*.jpg"))[index]
    with Image.open(path) as image:
        image = image.convert("RGB")
    return image.crop((0, 0, image.width // 8 * 8, image.height // 8 * 8))


def degraded(image: Image.Image, name: str, seed: int = 0) -> Image.Image:
    x = to_float(pil_to_tensor(image))
    return to_pil_image(to_uint8(NAMED[name].apply(x, torch.Generator().manual_seed(seed))))


class CountingRestorer:
    """Stands in for the trained restorer where the test is about who runs, not about the network."""

    def __init__(self):
        self.calls = []

    def enhance(self, image, upscale=1):
        self.calls.append(upscale)
        return image.resize((image.width * upscale, image.height * upscale), Image.Resampling.NEAREST)


def test_choose_prefers_the_untouched_photo_then_a_tool_on_ties_and_the_model_only_when_it_wins():
    assert choose({"unchanged": 30.0, "model": 30.0, "tool": 30.0})["method"] == "unchanged"
    assert choose({"unchanged": 29.0, "model": 31.0, "tool": 31.0}) | {"psnr": None} == {
        "method": "tool", "tool": "tool", "psnr": None, "model_margin_db": 0.0, "gain_db": 2.0}
    won = choose({"unchanged": 29.0, "model": 31.5, "tool": 31.0})
    assert won["method"] == "model" and won["model_margin_db"] == 0.5
    lost = choose({"unchanged": 32.0, "model": 31.5, "tool": 31.0})
    assert lost["method"] == "unchanged" and lost["gain_db"] == 0.0
    # An enlargement must enlarge: its untouched score (plain bicubic) is only the bar.
    assert choose({"unchanged": 33.0, "model": 31.0, "Lanczos": 32.0}, may_stay_unchanged=False)["method"] == "tool"
    # Beating the tools is not enough: the model must beat the untouched (bicubic) photo too.
    assert choose({"unchanged": 33.0, "model": 32.5, "Lanczos": 32.0}, may_stay_unchanged=False)["tool"] == "Lanczos"
    assert choose({"unchanged": 33.0, "model": 33.5, "Lanczos": 32.0}, may_stay_unchanged=False)["method"] == "model"
    assert choose({"model": 20.0, "Telea": 19.0}, may_stay_unchanged=False) == {
        "method": "model", "psnr": {"model": 20.0, "Telea": 19.0}, "model_margin_db": 1.0}


def test_each_task_runs_its_choice_the_corrections_at_the_photos_size_and_the_enlargement_last():
    photo = catalogue_photo()
    restorer = CountingRestorer()
    choices = {"denoise": {"method": "model"}, "deblur": {"method": "model"}, "jpeg": {"method": "unchanged"},
               "upscale2": {"method": "model"}}
    out, steps = enhance(photo, ["deblur", "denoise", "jpeg"], upscale=2, choices=choices, restorer=restorer)
    # Once for the corrections (at the photo's size, as measured), once more to enlarge, after the tools.
    assert restorer.calls == [1, 2] and out.size == (2 * photo.width, 2 * photo.height)
    assert [s["task"] for s in steps] == ["denoise", "jpeg", "deblur", "upscale2"]
    assert [s["method"] for s in steps] == ["model", "unchanged", "model", "model"]


def test_unchanged_means_the_same_pixels_and_a_tool_step_names_its_tool_and_keeps_alpha():
    photo = catalogue_photo()
    same, steps = enhance(photo, ["deblur"], choices={"deblur": {"method": "unchanged"}})
    assert np.array_equal(np.asarray(same), np.asarray(photo)) and steps[0]["method"] == "unchanged"
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    out, steps = enhance(rgba, ["exposure"], upscale=4, choices=None)
    assert out.mode == "RGBA" and out.size == (4 * photo.width, 4 * photo.height)
    assert steps == [
        {"task": "exposure", "method": "tool", "tool": classical.AUTOCONTRAST.name, "measured": False},
        {"task": "upscale4", "method": "tool", "tool": classical.LANCZOS.name, "measured": False},
    ]
    with pytest.raises(ValueError, match="restorer"):
        enhance(photo, ["denoise"], choices={"denoise": {"method": "model"}})
    with pytest.raises(ValueError, match="unknown Enhance task"):
        enhance(photo, ["sharpen"])
    with pytest.raises(ValueError, match="megapixels"):
        enhance(Image.new("RGB", (3000, 2000)), [], upscale=4)
    tiny = Image.new("RGB", (1, 5), (200, 120, 40))
    assert np.array_equal(np.asarray(classical.grey_edge(tiny)), np.asarray(tiny)), "no edges: no gains"


# Not jpeg20: the gentle denoiser gains ~0.3 dB on the benchmark's photos and loses on some, such as these
# thumbnails; that is what a task's "unchanged" choice is for.
@pytest.mark.parametrize("name", ["noise15", "noise25", "blur", "underexposed", "overexposed", "colourcast"])
def test_the_first_tool_beats_the_untouched_photo_on_what_its_task_undoes(name):
    clean = catalogue_photo(3)
    bad = degraded(clean, name)
    task = next(t for t in TASKS.values() if name in t.degradations)
    target = np.asarray(clean, dtype=np.float64)

    def error(image):
        return np.mean((np.asarray(image, dtype=np.float64) - target) ** 2)

    assert error(task.tools[0].apply(bad, 1)) < error(bad), (name, task.tools[0].name)


def test_the_noise_estimate_follows_the_added_noise():
    clean = catalogue_photo(5)
    estimates = [noise_sigma(degraded(clean, name)) for name in ("noise15", "noise25")]
    assert noise_sigma(clean) < 6 and 10 < estimates[0] < 20 < estimates[1] < 32, estimates


def test_auto_finds_what_degraded_photos_need():
    clean = [catalogue_photo(i) for i in range(0, 24, 4)]
    expected = {"noise25": "denoise", "jpeg20": "jpeg", "underexposed": "exposure", "colourcast": "colour", "blur": "deblur"}
    for name, task in expected.items():
        found = [detect.needed(degraded(photo, name, seed))[0] for seed, photo in enumerate(clean)]
        assert all(set(tasks) <= set(CORRECTIONS) for tasks in found)
        # bench/results/*-enhance-detect.md measures the rates on 372 test photos (91-100%); on 6 thumbnails, most.
        assert sum(task in tasks for tasks in found) >= 4, (name, found)
