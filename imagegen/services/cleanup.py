"""Files that outlive their rows: removed when their row is deleted, and swept by ``cleanup_imagegen``.

A deleted image, model version or job (its mask) has its files deleted once the deletion commits (a rolled
back delete keeps them), unless another row still refers to the same name. The sweep lists, and with
``apply`` deletes, what imagegen no longer needs in its storage folder (IMAGEGEN_UPLOAD_TO): files no row
refers to, rejected images, and retired model versions that no queued or running job uses.
"""
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..conf import settings
from ..models import GeneratedImage, Job, ModelVersion, ScenePhoto, SourcePhoto, imagegen_storage
from . import masks

logger = logging.getLogger(__name__)

FILE_FIELDS = {
    GeneratedImage: ("image",),
    ModelVersion: ("checkpoint", "sample_grid", "loss_curve", "copy_reference", "near_copy_sheet"),
    SourcePhoto: ("image",),
    ScenePhoto: ("image",),
}
# An unreferenced file younger than this may belong to a job that is saving its results right now (files
# are written before their rows commit), whatever --older-than says.
ORPHAN_GRACE = timedelta(days=1)


def _mask_of(job: Job) -> str | None:
    parameters = job.parameters if isinstance(job.parameters, dict) else {}
    options = parameters.get("options")
    name = options.get("mask") if isinstance(options, dict) else None
    return name if masks.is_stored_name(name) else None


def files_of(instance) -> list[tuple[object, str]]:
    """(storage, name) of each file a row of an imagegen model refers to."""
    if isinstance(instance, Job):
        name = _mask_of(instance)
        return [(imagegen_storage(), name)] if name else []
    found = []
    for name in FILE_FIELDS.get(type(instance), ()):
        file = getattr(instance, name)
        if file and file.name:
            found.append((file.storage, file.name))
    return found


def is_referenced(name: str) -> bool:
    """Whether any row still refers to the stored file ``name``."""
    for model, fields in FILE_FIELDS.items():
        refers = Q()
        for field_name in fields:
            refers |= Q(**{field_name: name})
        if model.objects.filter(refers).exists():
            return True
    return Job.objects.filter(parameters__options__mask=name).exists()


def delete_files_on_commit(instance, using: str) -> None:
    """After the deletion of ``instance`` commits, delete its files that no other row refers to."""
    found = files_of(instance)
    if not found:
        return

    def delete() -> None:
        for storage, name in found:
            try:
                if not is_referenced(name):
                    storage.delete(name)
            except Exception:  # the row is gone either way; the sweep finds the file later
                logger.exception("could not delete %s after its row was deleted; it is an orphan now", name)

    transaction.on_commit(delete, using=using)


def _files_follow_row(sender, instance, using: str, **kwargs) -> None:
    # After the commit: a rolled back delete keeps its files.
    delete_files_on_commit(instance, using)


def connect() -> None:
    """Delete a deleted row's files with it (called from ``AppConfig.ready``)."""
    for model in (GeneratedImage, ModelVersion, Job):
        post_delete.connect(_files_follow_row, sender=model, dispatch_uid=f"imagegen-files-follow-{model.__name__}")


def referenced_names() -> set[str]:
    names = set()
    for model, fields in FILE_FIELDS.items():
        for row in model.objects.values_list(*fields):
            names.update(name for name in row if name)
    for job in Job.objects.filter(parameters__options__has_key="mask").only("parameters"):
        name = _mask_of(job)
        if name:
            names.add(name)
    return names


@dataclass
class Item:
    """Something the sweep deletes: an orphan file, or a row with its files."""

    what: str  # "orphan", "rejected", "retired"
    label: str
    files: list[str]
    size: int
    row: object = None
    error: str = ""


@dataclass
class Sweep:
    items: list[Item] = field(default_factory=list)
    applied: bool = False

    def of(self, what: str) -> list[Item]:
        return [item for item in self.items if item.what == what]

    @property
    def errors(self) -> list[Item]:
        return [item for item in self.items if item.error]


def _walk(storage, folder: str) -> Iterator[str]:
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}/{name}"
    for sub in folders:
        yield from _walk(storage, f"{folder}/{sub}")


def _size(storage, names: Iterable[str]) -> int:
    total = 0
    for name in names:
        try:
            total += storage.size(name)
        except Exception:  # a file already gone counts as nothing
            pass
    return total


def _orphans(storage, cutoff) -> list[Item]:
    referenced = referenced_names()
    found = []
    for name in _walk(storage, settings.UPLOAD_TO.strip("/")):
        if name in referenced:
            continue
        try:
            if storage.get_modified_time(name) >= cutoff:
                continue
        except (NotImplementedError, OSError):  # age unknown: it may be a job's file being saved right now
            continue
        found.append(Item("orphan", name, [name], _size(storage, [name])))
    return found


def _in_use_versions() -> set[int]:
    """Versions a queued or running job uses: the one it made or used, or the one it resumes."""
    active = Job.objects.filter(state__in=[Job.State.QUEUED, Job.State.RUNNING])
    used = set(active.exclude(model_version=None).values_list("model_version_id", flat=True))
    for resume_from in active.filter(kind=Job.Kind.TRAIN).values_list("parameters__resume_from", flat=True):
        if isinstance(resume_from, int):
            used.add(resume_from)
    return used


def plan(older_than_days: float) -> Sweep:
    """What the sweep would delete: orphan files, rejected images and retired model versions, each older
    than ``older_than_days``."""
    storage = imagegen_storage()
    now = timezone.now()
    cutoff = now - timedelta(days=older_than_days)
    sweep = Sweep(_orphans(storage, min(cutoff, now - ORPHAN_GRACE)))
    rejected = GeneratedImage.objects.filter(review_state=GeneratedImage.ReviewState.REJECTED).alias(
        since=Coalesce("reviewed_at", "created_at")
    ).filter(since__lt=cutoff).order_by("pk")
    for image in rejected:
        names = [name for _, name in files_of(image)]
        sweep.items.append(Item("rejected", str(image), names, _size(storage, names), row=image))
    retired = ModelVersion.objects.filter(is_active=False).alias(
        since=Coalesce("activated_at", "created_at")
    ).filter(since__lt=cutoff).exclude(pk__in=_in_use_versions()).order_by("pk")
    for version in retired:
        names = [name for _, name in files_of(version)]
        sweep.items.append(Item("retired", f"{version} (#{version.pk})", names, _size(storage, names), row=version))
    return sweep


def apply(sweep: Sweep) -> Sweep:
    """Delete what ``sweep`` lists; each item that could not be deleted gets its ``error``."""
    storage = imagegen_storage()
    for item in sweep.items:
        try:
            if item.row is None:
                storage.delete(item.files[0])
            else:
                with transaction.atomic():
                    _delete_row(item.row)
            # The row's files go when its deletion commits (delete_files_on_commit): check that they went.
            left = [name for name in item.files if storage.exists(name) and not is_referenced(name)]
            if left:
                item.error = ", ".join(left)
        except Exception as exc:
            logger.exception("cleanup: could not delete %s", item.label)
            item.error = str(exc) or type(exc).__name__
    sweep.applied = True
    return sweep


def _delete_row(row) -> None:
    if isinstance(row, ModelVersion):
        # Checked again under the lock that activation takes: a version activated or taken into use since
        # the sweep was planned stays.
        locked = ModelVersion.objects.select_for_update().filter(pk=row.pk, is_active=False).first()
        if locked is None or locked.pk in _in_use_versions():
            raise RuntimeError(f"model version {row.pk} is in use again")
        locked.delete()
    else:
        row.delete()
