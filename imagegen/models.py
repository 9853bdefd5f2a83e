"""imagegen's tables: jobs, the images they make, the registry of trained model versions, and the source
photos staff upload to train on.

The product model is the host's (``IMAGEGEN_PRODUCT_MODEL``); this app never imports it directly.
"""
import uuid

from django.conf import settings as django_settings
from django.core.files.storage import storages
from django.core.signals import setting_changed
from django.core.validators import MaxValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils.functional import LazyObject, empty
from django.utils.translation import gettext_lazy as _

from .conf import settings


class _ConfiguredStorage(LazyObject):
    """The storage named by ``IMAGEGEN_STORAGE``, looked up on first use.

    A FileField calls a callable ``storage`` once, when models load, and keeps what it returns; returning
    this proxy instead of the storage itself lets a changed ``STORAGES`` or ``IMAGEGEN_STORAGE``
    (``override_settings``) take effect, as it does for Django's ``default_storage``."""

    def _setup(self) -> None:
        self._wrapped = storages[settings.STORAGE]


_configured_storage = _ConfiguredStorage()


@receiver(setting_changed)
def _forget_configured_storage(*, setting: str, **kwargs) -> None:
    if setting in ("STORAGES", "IMAGEGEN_STORAGE"):
        _configured_storage._wrapped = empty


def imagegen_storage():
    """The storage generated files go to (migrations refer to this callable by name)."""
    return _configured_storage


def _path(*parts: str) -> str:
    return "/".join([settings.UPLOAD_TO.strip("/"), *parts])


def generated_image_path(instance: "GeneratedImage", filename: str) -> str:
    return _path("images", str(instance.product_id), f"{uuid.uuid4().hex}.png")


def source_photo_path(instance: "SourcePhoto", filename: str) -> str:
    # The uploader's file name never reaches the key: it could hold "../", a script's name or just clash.
    return _path("photos", str(instance.product_id), f"{uuid.uuid4().hex}.png")


def scene_photo_path(instance: "ScenePhoto", filename: str) -> str:
    return _path("scenes", str(instance.scene_set_id), f"{uuid.uuid4().hex}.png")


def checkpoint_path(instance: "ModelVersion", filename: str) -> str:
    return _path("models", instance.kind, f"{uuid.uuid4().hex}.pt")


def model_plot_path(instance: "ModelVersion", filename: str) -> str:
    return _path("models", instance.kind, f"{uuid.uuid4().hex}-{filename}")


class Job(models.Model):
    """One unit of work (generate images, train a generator). Its row is the source of truth:
    tasks carry only its id and move it forward with conditional updates."""

    class Kind(models.TextChoices):
        GENERATE = "generate", "Generate images"
        TRAIN = "train", "Train generator"
        EDIT = "edit", "Edit a photo"

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINISHED_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    kind = models.CharField(max_length=32, choices=Kind.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    product = models.ForeignKey(
        settings.PRODUCT_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="imagegen_jobs",
        help_text="The product a generate job is for; training jobs list theirs in parameters.",
    )
    parameters = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    message = models.CharField(max_length=255, blank=True, help_text="What the job is doing now.")
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(
        null=True, blank=True, db_index=True,
        help_text="A running job's worker renews this; past it, the worker is presumed dead and the job is run again.",
    )
    worker = models.CharField(max_length=255, blank=True, help_text="host:pid of the worker running the latest attempt.")
    model_version = models.ForeignKey(
        "ModelVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        help_text="The model a generate job used, or the one a training job produced.",
    )
    bulk = models.ForeignKey(
        "BulkOperation",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        help_text="The bulk operation this job is one product of, if any.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["bulk", "state"], name="imagegen_job_bulk_state")]
        permissions = [
            ("generate_images", "Can generate images"),
            ("train_generator", "Can train generators"),
            ("edit_photos", "Can enhance and edit product photos"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="imagegen_job_progress_lte_100"),
            # The guard that makes a bulk operation's expansion safe to run twice or resume.
            models.UniqueConstraint(
                fields=["bulk", "product"], condition=Q(bulk__isnull=False), name="imagegen_job_unique_bulk_product"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED_STATES


class BulkOperation(models.Model):
    """One request over many products (an admin action over 10,000 products, say). It stores the selection
    and is expanded in the background into one ``Job`` per product (``services.bulk``), so results, errors
    and review stay per product while progress, cancelling and the summary are the operation's."""

    class Operation(models.TextChoices):
        GENERATE = "generate", "Generate images"
        # A photo operation (parameters["operation"] names it) over every selected product's photo.
        EDIT = "edit", _("Edit photos")

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        EXPANDING = "expanding", "Creating jobs"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE_STATES = (State.QUEUED, State.EXPANDING, State.RUNNING)
    FINISHED_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED)

    operation = models.CharField(max_length=32, choices=Operation.choices)
    parameters = models.JSONField(default=dict, blank=True, help_text="What each product's job gets (count, seed, kind).")
    product_ids = models.JSONField(default=list, help_text="The selected products, in the order their seeds follow.")
    total = models.PositiveIntegerField(default=0, help_text="Products selected.")
    expanded = models.PositiveIntegerField(
        default=0, help_text="Products of the selection whose job exists (where an interrupted expansion resumes)."
    )
    skipped = models.PositiveIntegerField(default=0, help_text="Selected products deleted before their job was made.")
    requested_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED, db_index=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    expanded_at = models.DateTimeField(null=True, blank=True, help_text="When the last job was created.")
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "bulk operation"

    def __str__(self) -> str:
        return f"{self.get_operation_display()} on {self.total} products #{self.pk} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in self.FINISHED_STATES


class ModelVersion(models.Model):
    """A trained generator: its checkpoint in storage, how it was trained and how it scored."""

    kind = models.CharField(max_length=32)
    name = models.CharField(max_length=100, blank=True)
    checkpoint = models.FileField(upload_to=checkpoint_path, storage=imagegen_storage, max_length=255)
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True)
    image_count = models.PositiveIntegerField(default=0, help_text="Training images used.")
    categories = models.JSONField(default=list, help_text="Category labels the generator was trained on.")
    product_ids = models.JSONField(
        default=list, blank=True, help_text="Products whose photos it was trained on (for the near-copy check)."
    )
    package_version = models.CharField(max_length=32, blank=True)
    is_active = models.BooleanField(default=False, db_index=True)
    sample_grid = models.ImageField(
        upload_to=model_plot_path, storage=imagegen_storage, blank=True, max_length=255
    )
    loss_curve = models.ImageField(upload_to=model_plot_path, storage=imagegen_storage, blank=True, max_length=255)
    copy_reference = models.FileField(
        upload_to=checkpoint_path, storage=imagegen_storage, blank=True, max_length=255,
        help_text="Features and thumbnails of the training photos, for checking generated images for near copies.",
    )
    near_copy_sheet = models.ImageField(
        upload_to=model_plot_path, storage=imagegen_storage, blank=True, max_length=255,
        help_text="Each sample flagged as a near copy, beside its nearest training photo.",
    )
    activated_at = models.DateTimeField(
        null=True, blank=True, help_text="When it was last activated: the most recently activated version serves."
    )
    scene_set = models.ForeignKey(
        "SceneSet", null=True, blank=True, on_delete=models.CASCADE, related_name="model_versions",
        verbose_name=_("scene set"), help_text=_("The scene set a scene generator learned (its versions serve that set only)."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"{self.kind} v{self.pk}"


class SceneSet(models.Model):
    """A named kind of scene products are put in ("oak table", "marble", "showroom"): its backdrops come
    from the shop's own product photos with the product removed, from uploaded scene photos, or from the
    studio sweep; a scene generator trained on them (a ``ModelVersion`` of kind "scenes") draws new ones."""

    class Source(models.TextChoices):
        BACKDROPS = "backdrops", _("The shop's own backdrops (product photos with the product removed)")
        UPLOADED = "uploaded", _("Uploaded scene photos")
        STUDIO = "studio", _("Studio sweep")

    name = models.CharField(_("name"), max_length=100, unique=True)
    source = models.CharField(_("source"), max_length=16, choices=Source.choices, default=Source.UPLOADED)
    colour = models.CharField(
        _("studio colour"), max_length=7, default="#ececec",
        help_text=_("The colour of a studio sweep, as #RRGGBB."),
    )
    product_ids = models.JSONField(
        _("products"), default=list, blank=True,
        help_text=_("Products whose photos give the backdrops of a set made from the shop's own backdrops."),
    )
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("scene set")
        verbose_name_plural = _("scene sets")

    def __str__(self) -> str:
        return self.name


class ScenePhoto(models.Model):
    """One backdrop of a scene set: an uploaded scene photo (stored as imagegen's PNG re-encoding, under the
    upload rules) or a product photo with the product cut out and the hole filled. Never edited."""

    class Origin(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        BACKDROP = "backdrop", _("Product photo, product removed")

    scene_set = models.ForeignKey(SceneSet, on_delete=models.CASCADE, related_name="photos", verbose_name=_("scene set"))
    image = models.ImageField(_("photo"), upload_to=scene_photo_path, storage=imagegen_storage, max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    origin = models.CharField(_("origin"), max_length=16, choices=Origin.choices, default=Origin.UPLOADED)
    # The product a backdrop was made from, as a plain id: the backdrop outlives the product.
    product_id = models.PositiveBigIntegerField(_("product"), null=True, blank=True)
    source_format = models.CharField(max_length=16, blank=True)
    original_name = models.CharField(max_length=255, blank=True)
    uploaded_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        default_permissions = ("add", "view", "delete")
        verbose_name = _("scene photo")
        verbose_name_plural = _("scene photos")
        constraints = [
            # A product photo gives a set one backdrop, however often its training is re-run.
            models.UniqueConstraint(
                fields=["scene_set", "product_id"], condition=Q(product_id__isnull=False),
                name="imagegen_scenephoto_unique_set_product",
            ),
        ]

    def __str__(self) -> str:
        return f"Scene photo #{self.pk} of {self.scene_set_id}"


# The kinds of edited images, one per photo operation: ``services.operations.register`` adds each operation's
# result kind and label. ``GeneratedImage.kind`` takes its choices from ``image_kinds``, a callable, which the
# migrations keep by reference: a new operation needs no migration.
IMAGE_KINDS: dict[str, str] = {}


def image_kinds() -> list[tuple[str, str]]:
    return [*GeneratedImage.Kind.choices, *IMAGE_KINDS.items()]


class GeneratedImage(models.Model):
    """An image imagegen made for a product. Originals are never touched: this is always a new file."""

    class Kind(models.TextChoices):
        # Images made by a generator; the photo operations' kinds are in IMAGE_KINDS.
        GENERATED = "generated", "Generated"

    class ReviewState(models.TextChoices):
        PENDING = "pending", "Pending review"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    product = models.ForeignKey(settings.PRODUCT_MODEL, on_delete=models.CASCADE, related_name="generated_images")
    kind = models.CharField(max_length=32, choices=image_kinds, default=Kind.GENERATED)
    image = models.ImageField(
        upload_to=generated_image_path,
        storage=imagegen_storage,
        max_length=255,
    )
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    source_image = models.CharField(
        max_length=255, blank=True, help_text="Storage name of the photo this image was made from, if any."
    )
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="images"
    )
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="images")
    seed = models.BigIntegerField()
    parameters = models.JSONField(default=dict, blank=True)
    quality_score = models.FloatField(null=True, blank=True)
    review_state = models.CharField(
        max_length=16, choices=ReviewState.choices, default=ReviewState.PENDING, db_index=True
    )
    review_note = models.CharField(max_length=255, blank=True, help_text="Why it was rejected automatically, if it was.")
    reviewed_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("review_generatedimage", "Can approve or reject generated images")]
        constraints = [
            # A job re-run after a crash must not attach the same image twice.
            models.UniqueConstraint(fields=["job", "seed"], name="imagegen_image_unique_job_seed"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} image #{self.pk} for product {self.product_id}"


class SourcePhoto(models.Model):
    """A photo of a product uploaded by staff to train on. Stored only as imagegen's own PNG re-encoding of
    the decoded pixels (``services.uploads``), never as the bytes that were sent; rows are added through
    ``services.add_source_photo`` and never edited."""

    product = models.ForeignKey(settings.PRODUCT_MODEL, on_delete=models.CASCADE, related_name="source_photos")
    image = models.ImageField(upload_to=source_photo_path, storage=imagegen_storage, max_length=255)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    source_format = models.CharField(
        max_length=16, help_text="What the upload was decoded as (Pillow's format name, e.g. JPEG); not what it claimed."
    )
    original_name = models.CharField(
        max_length=255, blank=True, help_text="The uploader's file name, cleaned; a label only, never a storage key."
    )
    uploaded_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # A photo is replaced by deleting it and uploading another: there is nothing to change.
        default_permissions = ("add", "view", "delete")

    def __str__(self) -> str:
        return f"Photo #{self.pk} of product {self.product_id}"


@receiver(post_delete, sender=ScenePhoto, dispatch_uid="imagegen_delete_scene_photo_file")
@receiver(post_delete, sender=SourcePhoto, dispatch_uid="imagegen_delete_source_photo_file")
def _delete_source_photo_file(sender, instance: SourcePhoto | ScenePhoto, using: str, **kwargs) -> None:
    """A deleted photo's file goes too, once the deletion is committed (a rolled back delete keeps it)."""
    name, storage = instance.image.name, instance.image.storage
    if name:
        transaction.on_commit(lambda: storage.delete(name), using=using)
