"""Product scenes (``services.operations.scene``, ``services.scene_sets``): the product cut out with a soft
matte and composed on a backdrop (drawn by a set's scene generator or the studio sweep) with shadows and
harmonised colour (``mlcore.scenes``), and empty backdrops made from product photos.

The backend imports this module when one of these is first asked for.
"""
from functools import partial
from io import BytesIO

import torch
from mlcore.background.classical import border_matte
from mlcore.background.images import mask_to_image, prepare
from mlcore.background.textures import studio_sweep
from mlcore.scenes import Layout, Lighting, compose_scene, soft_matte
from mlcore.cielab import srgb_to_lab
from mlcore.metrics.copy_gate import rate_test
from mlcore.metrics.memorization import pixel_near_copies
from mlcore.plots import save_sample_grid
from mlcore.scenegen.sampler import SceneGenerator
from mlcore.scenes.backdrops import empty_backdrop as _empty_backdrop, photo_window
from PIL import Image, ImageOps


# ΔE units kept back from the harmonisation budget for rounding the composite to 8 bits (bench/scenes.py saw 2 of
# 34 million product pixels at 8.27 with the whole budget of 8 used in float).
ROUNDING_MARGIN = 0.5


def product_mask(photo: Image.Image, segmenter) -> Image.Image:
    """The product's mask ("L"): by ``segmenter``, or without one by the classical border model, which is
    used only where its verdict says it can judge the photo (a plain backdrop): a wrong cut-out would put
    pieces of the old backdrop, or half a product, into the scene. A ValueError says why there is none."""
    if segmenter is not None:
        mask = segmenter.mask(photo)
    else:
        rgb, own_alpha = prepare(photo)
        if own_alpha is not None:
            mask = own_alpha
        else:
            matte = border_matte(rgb)
            if not matte.confident:
                raise ValueError(
                    "without a trained background cut-out model only photos on a plain backdrop can be cut out, "
                    f"and this one is not ({'; '.join(matte.reasons)}); train the cut-out model on your photos"
                )
            mask = mask_to_image(matte.alpha)
    if mask.getbbox() is None:
        raise ValueError("no product found in the photo")
    return mask


def empty_backdrop(photo: Image.Image, segmenter, inpainter) -> Image.Image:
    """``photo`` with its product (``product_mask``) removed and the hole filled (by ``inpainter`` when given,
    else classically). A ValueError when the product cannot be cut out."""
    return _empty_backdrop(photo, product_mask(photo, segmenter), inpainter)


def studio_backdrop(colour: tuple[int, int, int], size: tuple[int, int], seed: int) -> Image.Image:
    """A studio sweep (wall bending into the floor) in ``colour``, ``size`` (width, height), grain from ``seed``."""
    width, height = size
    pixels = studio_sweep(torch.tensor(colour) / 255.0, height, width, torch.Generator().manual_seed(seed))
    array = (pixels.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    return Image.fromarray(array, "RGB")


def scene_backdrop(generator, seed: int) -> Image.Image:
    """One backdrop of a scene generator at its native size, from ``seed``."""
    return generator.backdrops(1, seed)[0]


def compose_product_scene(
    photo: Image.Image, segmenter, backdrop, *, layout: dict, lighting: dict | None, harmoniser=None,
    max_delta_e: float = 8.0, depth_of_field: float = 1.0, seed: int = 0, min_long_side: int = 1024,
) -> tuple[Image.Image, dict]:
    """(the composite, what was done): ``photo``'s product, cut out (``product_mask``) with a soft matte, on ``backdrop`` (a PIL image, or "white"), placed by ``layout`` (``Layout``'s
    fields), lit by ``lighting`` (``Lighting``'s fields; None: no shadow) and harmonised by ``harmoniser``
    within ``max_delta_e``. A ValueError when nothing is cut out or an option is out of range."""
    matte = soft_matte(photo, product_mask(photo, segmenter))
    harmonise = None
    if harmoniser is not None and max_delta_e > ROUNDING_MARGIN:
        # The budget holds in float; the composite's 8-bit rounding may add up to about half a ΔE unit.
        harmonise = partial(harmoniser, max_delta_e=max_delta_e - ROUNDING_MARGIN)

    result = compose_scene(
        photo, matte, backdrop, layout=Layout(**layout), lighting=Lighting(**lighting) if lighting else None,
        harmonise=harmonise, seed=seed, depth_of_field=depth_of_field, min_long_side=min_long_side,
    )
    return result.image, dict(result.info)


def _square_stack(images: list, size: int) -> torch.Tensor:
    """uint8 N x 3 x size x size of PIL images, centre-cropped square (as the scene generator learns them)."""
    from torchvision.transforms.functional import pil_to_tensor

    return torch.stack([pil_to_tensor(ImageOps.fit(image.convert("RGB"), (size, size), Image.Resampling.LANCZOS))
                        for image in images])


def _layout_features(images: torch.Tensor) -> torch.Tensor:
    """What a backdrop looks like from afar: its CIELAB colour on a 4 x 4 grid (48 numbers per image), from
    uint8 or [-1, 1] N x 3 x H x W. No learned part: a scene set has no classes to train a feature extractor on."""
    x = images.float().div(255.0) if images.dtype == torch.uint8 else images.float().add(1.0).div(2.0)
    small = torch.nn.functional.adaptive_avg_pool2d(x.clamp(0, 1), 4)
    return srgb_to_lab(small).flatten(1).double()


# Held-out backdrops needed for their own 95th percentile; with fewer, the training backdrops' leave-one-out one.
MIN_CALIBRATION = 40


def _nearest(points: torch.Tensor, reference: torch.Tensor, *, skip_self: bool = False) -> torch.Tensor:
    """Each point's distance to its nearest reference point (the point itself left out with ``skip_self``)."""
    distances = torch.cdist(points, reference)
    if skip_self:
        distances.fill_diagonal_(float("inf"))
    return distances.min(dim=1).values


def check_scene_generator(checkpoint: bytes, training: list, held_out: list, *, seed: int, samples: int = 64,
                          percentile: float = 1.0, alpha: float = 0.01, plausible_share: float = 0.8,
                          ) -> tuple[dict, dict, bytes]:
    """(the near-copy test of a scene generator, whether its backdrops look like the set's, a PNG grid of samples).

    Near copies: ``samples`` backdrops drawn from ``seed`` are compared, in pixels (32 px thumbnails), with the
    training backdrops; the threshold is the ``percentile`` of the distances between distinct training
    backdrops, so real backdrops are flagged too: it fails only when its samples are flagged significantly more
    often than the ``held_out`` backdrops it never saw (Fisher's exact test, one-sided, at ``alpha``; without
    held-out ones, a binomial test against the percentile).

    Plausibility, calibrated on the set's own photos: a backdrop is plausible when its colour layout
    (``_layout_features``) is as close to a training backdrop as 95% of the held-out backdrops are (without
    MIN_CALIBRATION held-out ones: as 95% of the training backdrops are to their nearest other one). Real unseen
    backdrops pass 95% of the time by construction; a generator passes when at least ``plausible_share`` of its
    samples do. A collapsed or barely trained generator (blotches in colours the set does not have) does not, and
    the set keeps serving its own photos. Measured on the demo's 121 backdrops: a 279-step generator drawing red
    blotches (the catalogue's floors are grey, brown and white) had 16% plausible samples against the training
    radius, 47% against 13 held-out ones (too few for a 95th percentile, hence MIN_CALIBRATION)."""
    generator = SceneGenerator.from_checkpoint(checkpoint)
    size = generator.config.image_size
    reference = _square_stack(training, size)
    fake = generator.backdrop_tensor(samples, seed)
    threshold = pixel_near_copies(reference[:1], reference, percentile=percentile).threshold
    generated = pixel_near_copies(fake, reference, threshold=threshold)
    flagged_real = 0
    train_features = _layout_features(reference)
    real_distances = _nearest(train_features, train_features, skip_self=True)
    if held_out:
        unseen = _square_stack(held_out, size)
        flagged_real = int(pixel_near_copies(unseen, reference, threshold=threshold).flags.sum())
        if len(held_out) >= MIN_CALIBRATION:
            real_distances = _nearest(_layout_features(unseen), train_features)
    copies = rate_test(int(generated.flags.sum()), samples, flagged_real, len(held_out), alpha=alpha, percentile=percentile)
    copies.update(check="pixels (32 px thumbnails, mean absolute difference)", threshold=float(threshold))
    radius = float(torch.quantile(real_distances, 0.95))
    share = float((_nearest(_layout_features(fake), train_features) <= radius).double().mean())
    quality = {
        "measure": "share of samples whose 4x4 CIELAB colour layout is as close to a training backdrop as 95% of the "
                   + ("held-out" if len(held_out) >= MIN_CALIBRATION else "training") + " backdrops are",
        "plausible": round(share, 3), "needed": plausible_share, "radius": round(radius, 2), "passes": share >= plausible_share,
    }
    grid = BytesIO()
    save_sample_grid(fake[:16], grid, nrow=4)
    return copies, quality, grid.getvalue()


# A backdrop cut from one of a scene set's own photos.
photo_backdrop = photo_window
