"""Classification Accuracy Score (Ravuri & Vinyals 2019) with the shop's own small classifier.

Train a classifier only on generated images (with the labels they were
generated for) and test it on held-out real photos. It rewards images that
are both recognisable as their category and varied enough to generalise:
a collapsed generator trains a poor classifier even when each image looks
fine. The same classifier trained on the real training photos is the
reference ceiling.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .features import train_feature_extractor


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8, exactly as it would be saved as a picture."""
    if images.dtype == torch.uint8:
        return images
    return images.detach().cpu().float().add(1.0).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def classification_accuracy_score(
    gen_images: torch.Tensor,
    gen_labels: torch.Tensor,
    real_train: torch.Tensor,
    real_train_labels: torch.Tensor,
    real_test: torch.Tensor,
    real_test_labels: torch.Tensor,
    classes: Sequence[str],
    *,
    image_size: int | None = None,
    epochs: int = 15,
    batch_size: int = 32,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """``{"cas": accuracy on real_test of a classifier trained on gen_images,
    "real_accuracy": the same for one trained on real_train, "gap": their difference}``.

    Both classifiers share architecture, epochs, seed and augmentation, so the
    gap is due to the training images alone. ``image_size`` defaults to the
    real images' size.
    """
    size = int(image_size or real_train.shape[-1])
    common = dict(image_size=size, epochs=epochs, batch_size=batch_size, seed=seed, device=device)
    on_generated = train_feature_extractor(_to_uint8(gen_images), gen_labels, classes, **common)
    on_real = train_feature_extractor(real_train, real_train_labels, classes, **common)
    cas = on_generated.accuracy(real_test, real_test_labels)
    real_accuracy = on_real.accuracy(real_test, real_test_labels)
    return {"cas": cas, "real_accuracy": real_accuracy, "gap": real_accuracy - cas}
