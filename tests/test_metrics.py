"""Tests for mlcore.metrics: evaluation with a classifier trained on synthetic 32 px shapes."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch

from mlcore.checkpoint import save_checkpoint
from mlcore.metrics import (
    FeatureExtractor,
    classification_accuracy_score,
    density_coverage,
    evaluate,
    flag_near_copies,
    frechet_distance,
    frechet_distance_from_stats,
    kernel_inception_distance,
    nearest_real,
    pixel_near_copies,
    precision_recall,
    train_feature_extractor,
)

CLASSES = ["disc", "square", "bar"]
SIZE = 32
COLOURS = torch.tensor([[220, 40, 40], [40, 180, 60], [40, 70, 220]], dtype=torch.float32)


def make_shapes(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 N x 3 x 32 x 32: a coloured disc / square / bar per class, jittered in place, size and colour."""
    rng = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(SIZE).float(), torch.arange(SIZE).float(), indexing="ij")
    images, labels = [], []
    for label in range(len(CLASSES)):
        for _ in range(per_class):
            cy, cx = (torch.rand(2, generator=rng) * 12 + 10).tolist()
            r = float(torch.rand(1, generator=rng) * 4 + 5)
            if label == 0:
                mask = (ys - cy) ** 2 + (xs - cx) ** 2 <= r * r
            elif label == 1:
                mask = ((ys - cy).abs() <= r * 0.8) & ((xs - cx).abs() <= r * 0.8)
            else:
                mask = ((ys - cy).abs() <= 2) & ((xs - cx).abs() <= r * 1.4)
            colour = COLOURS[label] + torch.randn(3, generator=rng) * 15
            img = torch.full((3, SIZE, SIZE), 235.0)
            img = torch.where(mask, colour[:, None, None], img)
            img = img + torch.randn(3, SIZE, SIZE, generator=rng) * 6
            images.append(img.clamp(0, 255).round().to(torch.uint8))
            labels.append(label)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: these models are tiny, and on a shared 2-core machine two
    OpenMP threads competing with another busy process made this file run ~6x slower (45 s vs 7 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    return make_shapes(40, seed=1), make_shapes(20, seed=2)


@pytest.fixture(scope="module")
def extractor(data):
    (images, labels), _ = data
    return train_feature_extractor(images, labels, CLASSES, image_size=SIZE, epochs=4, batch_size=32, seed=0)


def gaussian(n: int, dim: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


# --- distribution -----------------------------------------------------------------------------


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    x = gaussian(300, 16, seed=0)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    small, large = frechet_distance(x, x + 0.5), frechet_distance(x, x + 2.0)
    # A pure shift changes only the mean term: 16 dims * shift^2.
    assert small == pytest.approx(16 * 0.25, rel=1e-6)
    assert large == pytest.approx(16 * 4.0, rel=1e-6)
    # numpy input gives the same value.
    assert frechet_distance(x.numpy(), (x + 0.5).numpy()) == pytest.approx(small)


def test_frechet_distance_matches_hand_computed_gaussians():
    # 1-D: real {-1, 1}: mean 0, var 2 (N - 1 divisor); fake {2, 6}: mean 4, var 8.
    # d = (0 - 4)^2 + 2 + 8 - 2 * sqrt(2 * 8) = 16 + 10 - 8 = 18.
    assert frechet_distance(torch.tensor([[-1.0], [1.0]]), torch.tensor([[2.0], [6.0]])) == pytest.approx(18.0)
    # Diagonal: sum over dims of (mu1 - mu2)^2 + (s1 - s2)^2 with s the standard deviations.
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.0])
    var1, var2 = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 9.0])
    expected = float(((mu1 - mu2) ** 2).sum() + ((var1.sqrt() - var2.sqrt()) ** 2).sum())
    got = frechet_distance_from_stats(mu1, torch.diag(var1), mu2, torch.diag(var2))
    assert got == pytest.approx(expected) and expected == pytest.approx(7.0)


def test_kid_is_unbiased_near_zero_for_one_distribution_and_positive_for_two():
    a, b = gaussian(400, 8, seed=1), gaussian(400, 8, seed=2)
    same_mean, same_std = kernel_inception_distance(a, b, subsets=20, subset_size=200, seed=0)
    diff_mean, _ = kernel_inception_distance(a, gaussian(400, 8, seed=3, shift=1.0), subsets=20, subset_size=200, seed=0)
    assert abs(same_mean) < 0.05 and same_std >= 0
    assert diff_mean > 10 * max(abs(same_mean), 0.01)
    # Deterministic for a seed.
    assert kernel_inception_distance(a, b, subsets=5, subset_size=50, seed=7) == kernel_inception_distance(
        a, b, subsets=5, subset_size=50, seed=7
    )


def _three_modes(per_mode: int, seed: int) -> torch.Tensor:
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)
    return (centres[:, None, :] + gaussian(3 * per_mode, 2, seed).view(3, per_mode, 2)).reshape(-1, 2)


def test_precision_recall_identical_sets_and_mode_collapse():
    real = _three_modes(60, seed=0)
    assert precision_recall(real, real, k=5) == (1.0, 1.0)
    collapsed = gaussian(180, 2, seed=5)  # every fake in the first mode only
    precision, recall = precision_recall(real, collapsed, k=5)
    assert precision > 0.9
    assert recall < 0.5


def test_density_and_coverage():
    real = _three_modes(60, seed=0)
    density, coverage = density_coverage(real, real, k=5)
    assert coverage == 1.0 and density >= 1.0
    matched_density, matched_coverage = density_coverage(real, _three_modes(60, seed=9), k=5)
    assert 0.6 < matched_density < 1.5 and matched_coverage > 0.8
    _, collapsed_coverage = density_coverage(real, gaussian(180, 2, seed=5), k=5)
    assert collapsed_coverage < 0.45
    far_density, far_coverage = density_coverage(real, gaussian(50, 2, seed=6, shift=100.0), k=5)
    assert far_density == 0.0 and far_coverage == 0.0


def test_knn_metrics_refuse_too_few_samples():
    with pytest.raises(ValueError, match="more than 5 samples"):
        precision_recall(gaussian(5, 2, seed=0), gaussian(20, 2, seed=1), k=5)


# --- feature extractor ------------------------------------------------------------------------


def test_feature_extractor_learns_a_separable_task(extractor, data):
    _, (test_images, test_labels) = data
    assert extractor.accuracy(test_images, test_labels) > 0.9
    feats = extractor.features(test_images)
    assert feats.shape == (len(test_images), extractor.feature_dim) and feats.dtype == torch.float32
    # Float input in [-1, 1] (generator output) gives the same features as uint8.
    as_float = test_images.float() / 127.5 - 1.0
    torch.testing.assert_close(extractor.features(as_float), feats)
    assert not extractor.model.training


def test_feature_extractor_is_deterministic_for_a_seed(extractor, data):
    (images, labels), _ = data
    again = train_feature_extractor(images[::4], labels[::4], CLASSES, image_size=SIZE, epochs=1, seed=3)
    twice = train_feature_extractor(images[::4], labels[::4], CLASSES, image_size=SIZE, epochs=1, seed=3)
    assert again.content_hash == twice.content_hash
    assert again.content_hash != extractor.content_hash


def test_feature_extractor_save_load_round_trip(extractor, data, tmp_path):
    _, (test_images, _) = data
    path = tmp_path / "fx.pt"
    extractor.save(path)
    loaded = FeatureExtractor.load(path)
    assert torch.equal(loaded.features(test_images), extractor.features(test_images))
    assert loaded.version_id == extractor.version_id and len(loaded.version_id) == 12
    assert loaded.classes == CLASSES and loaded.image_size == SIZE
    buffer = io.BytesIO()
    extractor.save(buffer)
    assert FeatureExtractor.load(buffer.getvalue()).content_hash == extractor.content_hash


class Payload:
    """An arbitrary object: unpickling it would mean running code from the file."""


def test_feature_extractor_load_refuses_pickled_objects_and_other_kinds(extractor, tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"format": 1, "package_version": "0.1.0", "kind": "feature-extractor", "config": {}, "x": Payload()}, evil)
    with pytest.raises(ValueError, match="weights_only"):
        FeatureExtractor.load(evil)
    other = tmp_path / "gan.pt"
    save_checkpoint({"kind": "cgan", "config": {}}, other)
    with pytest.raises(ValueError, match="not 'feature-extractor'"):
        FeatureExtractor.load(other)


def test_feature_extractor_load_detects_tampered_weights(extractor, tmp_path):
    path = tmp_path / "fx.pt"
    extractor.save(path)
    ckpt = torch.load(path, weights_only=True)
    ckpt["model"]["head.bias"] += 1.0
    torch.save(ckpt, path)
    with pytest.raises(ValueError, match="content hash"):
        FeatureExtractor.load(path)


# --- memorisation -----------------------------------------------------------------------------


def test_near_copy_check_flags_an_exact_copy_and_not_a_different_image(extractor, data):
    (images, labels), _ = data
    copy = images[7:8]
    # Clearly different: a checkerboard in a colour no class uses.
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    board = ((ys // 4 + xs // 4) % 2).to(torch.uint8)
    different = torch.stack([board * 255, board * 200, 255 - board * 255]).unsqueeze(0)
    fakes = torch.cat([copy, different])

    real_feats = extractor.features(images)
    indices, distances = nearest_real(extractor.features(fakes), real_feats)
    assert int(indices[0]) == 7 and float(distances[0]) == pytest.approx(0.0, abs=1e-6)

    result = flag_near_copies(extractor.features(fakes), real_feats)
    assert result.flags.tolist() == [True, False]
    assert result.threshold > 0
    json.dumps(result.to_dict())

    pixels = pixel_near_copies(fakes, images)
    assert pixels.flags.tolist() == [True, False]
    assert int(pixels.indices[0]) == 7 and 0 < pixels.threshold < 0.5
    # A threshold can also be given explicitly.
    assert flag_near_copies(extractor.features(fakes), real_feats, threshold=0.0).flags.tolist() == [True, False]


# --- CAS and the report -----------------------------------------------------------------------


def test_cas_of_real_images_as_generated_matches_real_accuracy(data):
    (images, labels), (test_images, test_labels) = data
    generated = images.float() / 127.5 - 1.0  # "generated" in the generator's [-1, 1] range
    result = classification_accuracy_score(
        generated, labels, images, labels, test_images, test_labels, CLASSES, epochs=3, seed=0
    )
    assert result["real_accuracy"] > 0.9
    assert result["cas"] == pytest.approx(result["real_accuracy"], abs=0.05)


def test_evaluate_report(extractor, data):
    (images, labels), (test_images, test_labels) = data
    # Fakes: the held-out images, minus all but 3 of the last category (too few to score).
    keep = (test_labels != 2) | (torch.arange(len(test_labels)) % 20 < 3)
    report = evaluate(
        extractor, images, labels, test_images[keep], test_labels[keep], CLASSES, kid_subsets=10, kid_subset_size=50
    )
    assert json.loads(json.dumps(report)) == report
    overall = report["overall"]
    assert overall["count_real"] == 120 and overall["count_fake"] == int(keep.sum())
    for key in ("fid", "kid_mean", "kid_std", "precision", "recall", "density", "coverage"):
        assert isinstance(overall[key], float) and math.isfinite(overall[key])
    assert overall["precision"] > 0.8
    assert report["per_category"]["disc"]["count_fake"] == 20 and "fid" in report["per_category"]["disc"]
    skipped = report["per_category"]["bar"]
    assert "note" in skipped and skipped["count_fake"] == 3 and "fid" not in skipped
    assert report["extractor"]["version_id"] == extractor.version_id

    # Fakes from one category only score worse overall than a matching mix.
    collapsed = evaluate(extractor, images, labels, test_images[:20], test_labels[:20], CLASSES, kid_subsets=10, kid_subset_size=50)
    matched = evaluate(extractor, images, labels, test_images, test_labels, CLASSES, kid_subsets=10, kid_subset_size=50)
    assert collapsed["overall"]["fid"] > matched["overall"]["fid"]
    assert collapsed["overall"]["recall"] < matched["overall"]["recall"]
