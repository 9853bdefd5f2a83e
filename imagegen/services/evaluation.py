"""Measuring generators with no downloaded weights: a feature extractor trained on the shop's own photos
(registered as a model version of kind "features"), and the metrics of mlcore.metrics computed with it."""
from io import BytesIO
from pathlib import Path
from typing import Any

from django.core.files.base import ContentFile
from django.db.models import QuerySet

from ..conf import settings
from ..models import ModelVersion
from .files import atomic_files
from .jobs import JobError
from .model_registry import activate, load_sampler
from .products import ProductPhoto, product_photos
from .training import TrainingSet, load_training_set

FEATURES_KIND = "features"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def train_feature_extractor(
    products: QuerySet, *, image_size: int = 64, epochs: int = 15, seed: int = 0, device: str | None = None
) -> ModelVersion:
    """Train the catalogue classifier whose frozen features the metrics use; register and activate it."""
    from mlcore import __version__
    from mlcore.devices import resolve_device
    from mlcore.metrics.features import train_feature_extractor as train

    data = load_training_set(list(product_photos(products)), image_size)
    count = 0 if data.images is None else len(data.images)
    if count < settings.MIN_TRAINING_IMAGES or len(data.classes) < 2:
        raise JobError(f"A feature extractor needs at least 2 categories and {settings.MIN_TRAINING_IMAGES} photos.")
    extractor = train(
        data.images, data.labels, data.classes, image_size=image_size, epochs=epochs, seed=seed,
        device=resolve_device(device or settings.DEVICE),
    )
    checkpoint = BytesIO()
    extractor.save(checkpoint)
    with atomic_files() as files:
        version = ModelVersion(
            kind=FEATURES_KIND,
            config={"image_size": image_size, "epochs": epochs, "seed": seed, "version_id": extractor.version_id},
            metrics={"train_accuracy": round(float(extractor.accuracy(data.images, data.labels)), 4)},
            image_count=count,
            categories=data.classes,
            package_version=__version__,
        )
        files.save(version.checkpoint, "features.pt", ContentFile(checkpoint.getvalue()))
        version.save()
        version.name = f"features {extractor.version_id} v{version.pk}"
        version.save(update_fields=["name"])
        activate(version)
    return version


def feature_extractor_for(categories: list[str]):
    """The newest active feature extractor trained on all of ``categories`` (loaded), and its version."""
    from mlcore.metrics.features import FeatureExtractor

    for version in ModelVersion.objects.filter(kind=FEATURES_KIND, is_active=True).order_by("-created_at", "-id"):
        if set(categories) <= set(version.categories):
            with version.checkpoint.open("rb") as fh:
                return FeatureExtractor.load(BytesIO(fh.read())), version
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


def _report(version: ModelVersion, sampler, real: TrainingSet, train: TrainingSet | None, *, per_class: int, seed: int):
    """Metrics of ``per_class`` samples per category against ``real``, and near copies of ``train``."""
    import torch

    from mlcore.data import stack_images
    from mlcore.metrics.memorization import flag_near_copies
    from mlcore.metrics.report import evaluate

    classes = list(version.categories)
    extractor, extractor_version = feature_extractor_for(classes)
    fakes, fake_labels = [], []
    for index, category in enumerate(classes):
        fakes += sampler.generate_seeds(category, [seed + i for i in range(per_class)])
        fake_labels += [index] * per_class
    fake_images = stack_images(fakes, int(version.config.get("image_size", settings.IMAGE_SIZE)))
    labels = torch.tensor(fake_labels, dtype=torch.long)
    report = evaluate(extractor, real.images, real.labels, fake_images, labels, classes, seed=seed)
    report["feature_extractor_version"] = extractor_version.pk
    if train is not None and train.images is not None:
        # A shop must not publish a copy of a training photo as a new image.
        copies = flag_near_copies(extractor.features(fake_images), extractor.features(train.images)).to_dict()
        report["near_copies"] = {key: copies[key] for key in ("flagged", "threshold", "flagged_indices")}
    return report


def evaluate_version(version: ModelVersion, real_dir: Path, *, per_class: int = 50, seed: int = 0) -> dict[str, Any]:
    """Generate ``per_class`` images per category and compare them with the real photos in ``real_dir``
    (keep it out of training: e.g. the test split). Stores the report in the version's metrics."""
    classes = list(version.categories)
    size = int(version.config.get("image_size", settings.IMAGE_SIZE))
    real = load_training_set(folder_photos(Path(real_dir), classes), size, classes)
    if real.images is None:
        raise JobError(f"No photos of {', '.join(classes)} under {real_dir}/<category>/.")
    train = load_training_set(list(product_photos(version.product_ids)), size, classes)
    report = _report(version, load_sampler(version), real, train, per_class=per_class, seed=seed)
    report["real_dir"] = str(real_dir)
    version.metrics = {**version.metrics, "evaluation": report}
    version.save(update_fields=["metrics"])
    return report


def evaluate_after_training(version: ModelVersion, sampler, data: TrainingSet, *, per_class: int = 50) -> dict | None:
    """The metrics of a freshly trained version against its own training photos (how well it fits them,
    and whether it copies them), or None when no feature extractor covers its categories yet."""
    try:
        report = _report(version, sampler, data, data, per_class=per_class, seed=0)
    except JobError:
        return None
    report["real_dir"] = "training photos"
    return report


def activation_decision(version: ModelVersion) -> tuple[bool, str]:
    """Whether a new version may replace the active ones it covers: not when its FID (with the same feature
    extractor) is worse than theirs, nor when it reproduces training photos."""
    policy = settings.AUTO_ACTIVATE
    if policy in ("always", "never"):
        return policy == "always", f"IMAGEGEN_AUTO_ACTIVATE is {policy!r}"
    evaluation = version.metrics.get("evaluation") or {}
    if not evaluation:
        return True, "no feature extractor yet, so no metrics to compare"
    if evaluation.get("near_copies", {}).get("flagged"):
        return False, f"{evaluation['near_copies']['flagged']} samples are near copies of training photos"
    fid = evaluation["overall"]["fid"]
    for other in ModelVersion.objects.filter(kind=version.kind, is_active=True).exclude(pk=version.pk):
        previous = (other.metrics.get("evaluation") or {})
        same_basis = previous.get("feature_extractor_version") == evaluation.get("feature_extractor_version")
        if same_basis and set(other.categories) <= set(version.categories) and previous["overall"]["fid"] < fid:
            return False, f"FID {fid:.2f} is worse than the active {other}'s {previous['overall']['fid']:.2f}"
    return True, f"FID {fid:.2f} is no worse than the active versions it replaces"


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
    from mlcore.conditioning.vocab import tokenize, word_forms

    words = {form for word in tokenize(text) for form in word_forms(word)}
    named = [c for c in categories if set(tokenize(c)) and set(tokenize(c)) <= words]
    return named[0] if len(named) == 1 else None
