"""The decoded-photo cache: training reads squared tensors instead of decoding the same JPEGs again."""
import os
import time

import pytest
import torch

from mlcore.photo_cache import DecodedPhotoCache, photo_key


def test_entries_round_trip_and_a_corrupt_one_is_forgotten(tmp_path):
    cache = DecodedPhotoCache(tmp_path)
    pixels = torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8)
    key = photo_key(b"photo bytes", 8)
    assert cache.get(key) is None
    cache.put(key, pixels, "navy")
    got, colour = cache.get(key)
    assert torch.equal(got, pixels) and colour == "navy"
    assert (cache.hits, cache.misses) == (1, 1)
    # The size is part of the key: the same photo at another size is another entry.
    assert photo_key(b"photo bytes", 16) != key and photo_key(b"other bytes", 8) != key

    path = next(tmp_path.rglob("*.pt"))
    path.write_bytes(b"not a tensor file")
    assert cache.get(key) is None
    assert not path.exists()


def test_prune_removes_the_least_recently_used_entries_first(tmp_path):
    cache = DecodedPhotoCache(tmp_path, max_bytes=None)
    for i in range(6):
        cache.put(photo_key(bytes([i]), 8), torch.zeros(3, 8, 8, dtype=torch.uint8), "")
    paths = {i: cache._path(photo_key(bytes([i]), 8)) for i in range(6)}
    now = time.time()
    for i, path in paths.items():
        os.utime(path, (now - 100 + i, now - 100 + i))
    cache.get(photo_key(bytes([0]), 8))  # used just now: the most recent
    size = paths[1].stat().st_size
    cache.max_bytes = 3 * size
    assert cache.prune() == 3
    assert {i for i, path in paths.items() if path.exists()} == {0, 4, 5}


@pytest.mark.django_db
def test_training_set_is_read_from_the_cache_the_second_time(make_products, settings, tmp_path):
    from imagegen.services.products import product_photos
    from imagegen.services.training_sets import load_training_set

    settings.IMAGEGEN_DECODED_PHOTO_CACHE_DIR = str(tmp_path / "cache")
    products = make_products({"dress": 4, "hat": 3})
    photos = list(product_photos([p.pk for p in products]))
    first = load_training_set(photos, 64)
    entries = sorted((tmp_path / "cache").rglob("*.pt"))
    assert len(entries) == len(photos) == 7

    # Prove the second read comes from the cache: change one entry and see it come back.
    entry = torch.load(entries[0], weights_only=True)
    entry["pixels"] = torch.full_like(entry["pixels"], 7)
    torch.save(entry, entries[0])
    second = load_training_set(photos, 64)
    changed = [i for i in range(len(photos)) if not torch.equal(first.images[i], second.images[i])]
    assert len(changed) == 1 and int(second.images[changed[0]].float().mean()) == 7
    assert second.attributes == first.attributes and torch.equal(second.labels, first.labels)

    # Switched off, nothing is read or written.
    settings.IMAGEGEN_DECODED_PHOTO_CACHE_MAX_MB = 0
    third = load_training_set(photos, 64)
    assert torch.equal(third.images, first.images)
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 7
