"""Measuring generators with no downloaded weights: a feature extractor trained on the shop's own photos
(registered as a model version of kind "features"), and the metrics of mlcore.metrics computed with it."""
import logging
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from ..backends import get_backend
from ..conf import settings
from ..models import ModelVersion
from .files import atomic_files
from ..jobcore.errors import JobError
from .model_registry import SERVING_ORDER, activate, load_feature_extractor, load_sampler
from .products import ProductPhoto, product_photos
from .training_sets import TrainingSet, load_training_set

logger = logging.getLogger(__name__)

FEATURES_KIND = "features"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def train_feature_extractor(
    products: QuerySet, *, image_size: int = 64, epochs: int = 15, seed: int = 0, device: str | None = None
) -> ModelVersion:
    """Train the catalogue classifier whose frozen features the metrics use; register and activate it."""
    data = load_training_set(list(product_photos(products)), image_size)
    count = 0 if data.images is None else len(data.images)
    if count < settings.MIN_TRAINING_IMAGES or len(data.classes) < 2:
        raise JobError(f"A feature extractor needs at least 2 categories and {settings.MIN_TRAINING_IMAGES} photos.")
    return _register_extractor(data, image_size=image_size, epochs=epochs, seed=seed, device=device)[1]


def _register_extractor(data: TrainingSet, *, image_size: int = 64, epochs: int = 15, seed: int = 0, device=None):
    """Train a feature extractor on ``data``, register it as an active version; returns (extractor, version)."""
    backend = get_backend()
    extractor = backend.train_feature_extractor(
        data.images, data.labels, data.classes, image_size=image_size, epochs=epochs, seed=seed,
        device=backend.resolve_device(device or settings.DEVICE),
    )
    checkpoint = BytesIO()
    extractor.save(checkpoint)
    with atomic_files() as files:
        version = ModelVersion(
            kind=FEATURES_KIND,
            config={"image_size": image_size, "epochs": epochs, "seed": seed, "version_id": extractor.version_id},
            metrics={"train_accuracy": round(float(extractor.accuracy(data.images, data.labels)), 4)},
            image_count=len(data.images),
            categories=data.classes,
            product_ids=sorted({photo.product_id for photo in data.sources}),
            package_version=backend.version,
        )
        files.save(version.checkpoint, "features.pt", ContentFile(checkpoint.getvalue()))
        version.save()
        version.name = f"features {extractor.version_id} v{version.pk}"
        version.save(update_fields=["name"])
        activate(version)
    return extractor, version


def ensure_feature_extractor(data: TrainingSet, *, device=None, progress=None):
    """(extractor, its version) covering the training set's categories: the active one, else one trained now
    on these training photos (never on the held-out ones, which it will measure). None when no classifier
    can be trained: fewer than 2 categories or too few photos."""
    try:
        return feature_extractor_for(data.classes)
    except JobError:
        pass
    count = 0 if data.images is None else len(data.images)
    if len(data.classes) < 2 or count < settings.MIN_TRAINING_IMAGES:
        logger.info("no feature extractor for %s and too few categories or photos to train one", data.classes)
        return None
    if progress is not None:
        progress(92, _("Training the feature extractor that measures generators (none covers these categories yet)"))
    return _register_extractor(data, device=device)


def feature_extractor_for(categories: list[str]):
    """The newest active feature extractor trained on all of ``categories`` (loaded), and its version."""
    for version in ModelVersion.objects.filter(kind=FEATURES_KIND, is_active=True).order_by(*SERVING_ORDER):
        if set(categories) <= set(version.categories):
            return load_feature_extractor(version), version
    raise JobError(
        f"No feature extractor covers {', '.join(categories)}. Train one: manage.py train_feature_extractor."
    )


def folder_photos(directory: Path, classes: list[str]) -> list[ProductPhoto]:
    """Photos laid out as DIR/<category>/<image> for the given categories."""
    from django.core.files.storage import FileSystemStorage

    storage = FileSystemStorage(location=str(directory))
    photos = []
    for category in classes:
        folder = directory / category
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    photos.append(ProductPhoto(product_id=0, category=category, name=f"{category}/{path.name}", storage=storage))
    return photos


# Near-copy samples (each beside its nearest training photo) drawn on the version's sheet.
SHEET_PAIRS = 32


@dataclass
class Measured:
    """A version measured before activation: its report, the near-copy reference for the images it will
    generate (a checkpoint, bytes) and the PNG of its flagged samples (None when none was flagged)."""

    report: dict[str, Any]
    reference: bytes
    sheet: bytes | None


def _measure(
    version: ModelVersion, sampler, extractor_pair, *, train: TrainingSet, real: TrainingSet, held: TrainingSet | None,
    per_class: int, seed: int,
) -> Measured:
    """Metrics of ``per_class`` samples per category against ``real``; near copies of ``train``, tested against
    how often the ``held`` photos (never trained on) are flagged."""
    extractor, extractor_version = extractor_pair
    report, reference, sheet = get_backend().measure_generator(
        sampler, extractor, classes=list(version.categories),
        image_size=int(version.config.get("image_size", settings.IMAGE_SIZE)), train=train, real=real, held=held,
        per_class=per_class, seed=seed, percentile=settings.NEAR_COPY_PERCENTILE, alpha=settings.NEAR_COPY_ALPHA,
        sheet_pairs=SHEET_PAIRS,
    )
    report["feature_extractor_version"] = extractor_version.pk
    return Measured(report, reference, sheet)


def evaluate_version(version: ModelVersion, real_dir: Path, *, per_class: int = 50, seed: int = 0) -> dict[str, Any]:
    """Generate ``per_class`` images per category and compare them with the real photos in ``real_dir``
    (keep it out of training: e.g. the test split). Stores the report in the version's metrics."""
    classes = list(version.categories)
    size = int(version.config.get("image_size", settings.IMAGE_SIZE))
    real = load_training_set(folder_photos(Path(real_dir), classes), size, classes)
    if real.images is None:
        raise JobError(f"No photos of {', '.join(classes)} under {real_dir}/<category>/.")
    train = load_training_set(list(product_photos(version.product_ids)), size, classes)
    if train.images is None:
        raise JobError(f"None of the photos {version} was trained on can be read any more.")
    measured = _measure(
        version, load_sampler(version), feature_extractor_for(classes), train=train, real=real, held=real,
        per_class=per_class, seed=seed,
    )
    report = measured.report | {"real_dir": str(real_dir)}
    version.metrics = {**version.metrics, "evaluation": report}
    version.save(update_fields=["metrics"])
    return report


def evaluate_after_training(version: ModelVersion, sampler, data: TrainingSet, extractor_pair, *, per_class: int = 50) -> Measured:
    """A freshly trained version measured on the photos held out of its training (on its training photos when
    too few were held out for the distribution metrics), and checked for near copies of its training photos."""
    size = int(version.config.get("image_size", settings.IMAGE_SIZE))
    held = load_training_set(data.held_out, size, data.classes) if data.held_out else None
    enough = held is not None and held.images is not None and get_backend().enough_real_photos(len(held.images))
    measured = _measure(
        version, sampler, extractor_pair, train=data, real=held if enough else data, held=held,
        per_class=per_class, seed=0,
    )
    measured.report["real_dir"] = "held-out photos" if enough else "training photos"
    return measured


def activation_decision(version: ModelVersion) -> tuple[bool, str]:
    """Whether a new version may replace the active ones it covers: not when its samples are near copies of
    training photos significantly more often than held-out photos are, nor when its FID (same feature
    extractor, same kind of real photos) is worse than theirs."""
    policy = settings.AUTO_ACTIVATE
    if policy in ("always", "never"):
        return policy == "always", _("IMAGEGEN_AUTO_ACTIVATE is %(policy)r") % {"policy": policy}
    evaluation = version.metrics.get("evaluation") or {}
    if not evaluation:
        return True, _("no feature extractor could be trained (fewer than 2 categories), so no metrics to compare")
    copies = evaluation.get("near_copies", {})
    if copies.get("significant"):
        return False, _(
            "its samples are near copies of training photos more often than real photos are by chance: "
            "%(flagged)d of %(total)d samples against %(held)d of %(held_total)d held-out photos "
            "(%(test)s, p = %(p).2g < %(alpha)g)"
        ) % {
            "flagged": copies["generated_flagged"], "total": copies["generated_total"], "held": copies["held_out_flagged"],
            "held_total": copies["held_out_total"], "test": copies["test"], "p": copies["p_value"], "alpha": copies["alpha"],
        }
    fid = evaluation["overall"]["fid"]
    for other in ModelVersion.objects.filter(kind=version.kind, is_active=True).exclude(pk=version.pk):
        previous = (other.metrics.get("evaluation") or {})
        same_basis = (
            previous.get("feature_extractor_version") == evaluation.get("feature_extractor_version")
            and previous.get("real_dir") == evaluation.get("real_dir")
        )
        if same_basis and set(other.categories) <= set(version.categories) and previous["overall"]["fid"] < fid:
            return False, _("FID %(fid).2f is worse than the active %(other)s's %(previous).2f") % {
                "fid": fid, "other": other, "previous": previous["overall"]["fid"],
            }
    return True, _("FID %(fid).2f on %(basis)s is no worse than the active versions it replaces; near copies no more "
                   "frequent than among held-out photos (%(flagged)d of %(total)d samples, p = %(p).2g)") % {
        "fid": fid, "basis": evaluation.get("real_dir", "?"), "flagged": copies.get("flagged", 0),
        "total": copies.get("generated_total", 0), "p": copies.get("p_value", 1.0),
    }


def write_samples(
    version: ModelVersion,
    out_dir: Path,
    *,
    count: int,
    seed: int,
    category: str | None = None,
    attributes: dict | None = None,
    text: str | None = None,
) -> tuple[list[Path], list[str]]:
    """Write ``count`` samples per category (or of one category) as ``<category>_<index>.png``.

    With ``attributes``/``text`` (text-conditioned kinds only) the samples are of that description; without
    a category, the category its text names is used, else none is given (files ``uncategorised_<i>.png``).
    Returns the paths and the parts of the description the model does not know (ignored)."""
    unknown = [c for c in ([category] if category else []) if c not in version.categories]
    if unknown:
        raise JobError(f"{version} was not trained on {', '.join(unknown)}; it knows {', '.join(version.categories)}.")
    sampler = load_sampler(version)
    described = bool(attributes) or bool(text)
    if described and not sampler.config.uses_text:
        raise JobError(
            f"{version} is a {version.kind!r} model, which conditions on the category alone; attributes and "
            "text need a text-conditioned kind (tcgan)."
        )
    if described:
        classes = [category or named_category(text, version.categories)]
    else:
        classes = [category] if category else list(version.categories)
    ignored = sampler.unknown(attributes, text) if described else []
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in classes:
        seeds = [seed + i for i in range(count)]
        images = sampler.generate_for(seeds, category=name, attributes=attributes, text=text)
        for index, image in enumerate(images):
            path = out_dir / f"{name or 'uncategorised'}_{index}.png"
            image.save(path, format="PNG")
            paths.append(path)
    return paths, ignored


def named_category(text: str | None, categories: list[str]) -> str | None:
    """The category a text names ("red leather skirts" -> "skirt"), None when it names none or several."""
    return get_backend().named_category(text, categories)
