"""Bulk operations: one request over many products, run as one job per product in batches.

The request only stores the operation and the selected ids, and sends one expansion task (on
``IMAGEGEN_LIGHT_QUEUE``). The expansion creates the jobs ``IMAGEGEN_BULK_CHUNK_SIZE`` at a time, each chunk
in one transaction that also advances the operation's ``expanded`` counter under a row lock, so a re-run
or a resumed expansion never makes a product's job twice (a unique constraint on (bulk, product) backs
this up). After each chunk commits, its jobs go to the inference queue as ``imagegen.run_jobs`` messages of
``IMAGEGEN_BULK_BATCH_SIZE`` jobs.

Seeds: product *i* of the selection (in order of primary key) gets seed ``seed + i * count``, so its images
use ``seed + i * count`` .. ``seed + i * count + count - 1`` and no two products share a seed.
"""
import logging
import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from ..conf import settings
from ..models import BulkOperation, Job
from ..jobcore.errors import TooManyActiveJobs
from ..jobcore.groups import ACTIVE_JOB_STATES, send_batches, send_expansion, settle
from ..jobcore.seeds import SEED_MAX, validate_seed
from .generation import validate_kind
from .products import product_model

logger = logging.getLogger(__name__)

class TooManyBulkOperations(TooManyActiveJobs):
    """The user already has IMAGEGEN_MAX_ACTIVE_BULK_OPERATIONS_PER_USER bulk operations unfinished."""


def request_bulk_generation(
    products: QuerySet, *, count: int = 4, seed: int | None = None, kind: str | None = None, user=None
) -> BulkOperation:
    """Store a bulk operation generating ``count`` images for each of ``products`` and send its expansion
    once the transaction commits. Costs one query for the ids whatever the selection's size; no job is
    made here. Refuses an empty selection, bad parameters and a user at the bulk cap (nothing is stored)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= settings.MAX_IMAGES_PER_JOB:
        raise ValidationError({"count": f"Count must be from 1 to {settings.MAX_IMAGES_PER_JOB}."})
    kind = validate_kind(kind)
    # Ordered, so that "product i of the selection" (and with it every seed) is reproducible.
    product_ids = list(products.order_by("pk").values_list("pk", flat=True).distinct())
    if not product_ids:
        raise ValidationError({"products": "No products selected."})
    seeds_needed = len(product_ids) * count
    if seeds_needed > SEED_MAX:
        raise ValidationError({"products": f"{len(product_ids)} products × {count} images need more seeds than there are."})
    if seed is None:
        seed = secrets.randbelow(SEED_MAX - seeds_needed + 2)
    seed = validate_seed(seed)
    if seed + seeds_needed - 1 > SEED_MAX:
        raise ValidationError(
            {"seed": f"Seed plus {seeds_needed} (products × count) must stay below 2**31; use a seed up to "
                     f"{SEED_MAX - seeds_needed + 1}."}
        )
    return _store(BulkOperation.Operation.GENERATE, {"count": count, "seed": seed, "kind": kind}, product_ids, user)


def _store(kind: str, parameters: dict, product_ids: list[int], user) -> BulkOperation:
    """Store the operation, refusing a user at the cap, and send its expansion once the transaction commits."""
    with transaction.atomic():
        _check_active_operations(user)
        operation = BulkOperation.objects.create(
            operation=kind, parameters=parameters, product_ids=product_ids, total=len(product_ids),
            requested_by=user if user is not None and user.is_authenticated else None,
        )
        operation_id = operation.pk
        transaction.on_commit(lambda: send_expansion(operation_id))
    return operation


def request_bulk_edit(products: QuerySet, operation: str, *, options: dict | None = None, user=None) -> BulkOperation:
    """Store a bulk operation running the photo operation ``operation`` with ``options`` on each product's
    primary photo, expanded in the background as ``request_bulk_generation`` is. The options are validated
    here, once, by the operation's serializer. An operation with a ``seed`` option and ``variants`` gives
    product *i* the seeds after product *i - 1*'s, as generation does; a product without a photo gets a
    job that fails saying so (its summary counts it)."""
    from . import operations

    op = operations.get(operation)
    if op.takes_mask and (options or {}).get("mask"):
        raise ValidationError({"mask": _("A bulk operation takes no painted mask: it runs the same options on every product.")})
    cleaned = op.clean(dict(options or {}))
    product_ids = list(products.order_by("pk").values_list("pk", flat=True).distinct())
    if not product_ids:
        raise ValidationError({"products": _("No products selected.")})
    return _store(BulkOperation.Operation.EDIT, {"operation": op.name, "options": cleaned}, product_ids, user)


def _job_for(operation: BulkOperation, index: int) -> tuple[str, dict]:
    """(Job kind, parameters) of the job of product ``index`` of the selection."""
    params = operation.parameters
    if operation.operation == BulkOperation.Operation.EDIT:
        options = dict(params["options"])
        if "seed" in options:
            options["seed"] = int(options["seed"]) + index * int(options.get("variants", 1))
        return Job.Kind.EDIT, {"operation": params["operation"], "options": options, "source": {"type": "product"}}
    count, seed = int(params["count"]), int(params["seed"])
    return Job.Kind.GENERATE, {"count": count, "seed": seed + index * count, "kind": params["kind"]}


def _check_active_operations(user) -> None:
    """Refuse a new operation to a user at the cap; the user's row lock serialises their requests."""
    cap = settings.MAX_ACTIVE_BULK_OPERATIONS_PER_USER
    if cap is None or user is None or not user.is_authenticated:
        return
    list(get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True))
    active = BulkOperation.objects.filter(requested_by=user, state__in=BulkOperation.ACTIVE_STATES).count()
    if active >= cap:
        raise TooManyBulkOperations(
            f"You have {active} bulk operations unfinished, the most one user may have at once "
            f"(IMAGEGEN_MAX_ACTIVE_BULK_OPERATIONS_PER_USER = {cap}). Wait for one to finish, or cancel one."
        )


def expand(operation_id: int) -> BulkOperation | None:
    """Create the operation's jobs chunk by chunk and send them; safe to run twice or after a crash
    (it resumes after the last committed chunk) and it stops when the operation is cancelled."""
    started = BulkOperation.objects.filter(pk=operation_id, state=BulkOperation.State.QUEUED).update(
        state=BulkOperation.State.EXPANDING, started_at=timezone.now(), updated_at=timezone.now()
    )
    if started:
        logger.info("bulk operation %s: expanding", operation_id)
    while True:
        job_ids, more = _expand_chunk(operation_id)
        if job_ids:
            send_batches(job_ids)
        if not more:
            break
    settle([operation_id])
    return BulkOperation.objects.filter(pk=operation_id).first()


def _expand_chunk(operation_id: int) -> tuple[list[int], bool]:
    """Create the next chunk's jobs in one transaction; returns their ids and whether to go on."""
    with transaction.atomic():
        # The lock serialises two expansions of one operation (a duplicate delivery) and a cancel.
        operation = BulkOperation.objects.select_for_update().filter(pk=operation_id).first()
        if operation is None or operation.state != BulkOperation.State.EXPANDING:
            return [], False
        start = operation.expanded
        if start >= operation.total:
            operation.state = BulkOperation.State.RUNNING
            operation.expanded_at = timezone.now()
            operation.save(update_fields=["state", "expanded_at", "updated_at"])
            return [], False
        chunk = operation.product_ids[start : start + settings.BULK_CHUNK_SIZE]
        existing = set(product_model().objects.filter(pk__in=chunk).values_list("pk", flat=True))
        jobs = Job.objects.bulk_create(
            Job(
                kind=kind,
                product_id=product_id,
                bulk=operation,
                requested_by_id=operation.requested_by_id,
                parameters=parameters,
            )
            for offset, product_id in enumerate(chunk)
            if product_id in existing
            for kind, parameters in [_job_for(operation, start + offset)]
        )
        operation.expanded = start + len(chunk)
        operation.skipped += len(chunk) - len(jobs)
        operation.save(update_fields=["expanded", "skipped", "updated_at"])
    return [job.pk for job in jobs], True


def cancel(operation: BulkOperation) -> bool:
    """Cancel an unfinished operation: the expansion stops at its next chunk, the queued and running jobs
    are cancelled in one UPDATE (running ones stop at their next progress report). False when it had
    already finished."""
    now = timezone.now()
    with transaction.atomic():
        changed = BulkOperation.objects.filter(pk=operation.pk, state__in=BulkOperation.ACTIVE_STATES).update(
            state=BulkOperation.State.CANCELLED, finished_at=now, updated_at=now
        )
        if changed:
            Job.objects.filter(bulk_id=operation.pk, state__in=ACTIVE_JOB_STATES).update(
                state=Job.State.CANCELLED, finished_at=now, updated_at=now, message="Cancelled with its bulk operation",
                lease_expires_at=None,
            )
    operation.refresh_from_db()
    return bool(changed)


def may_cancel(user, operation: BulkOperation) -> bool:
    """Whoever may generate images cancels their own operations; other people's need imagegen.change_job."""
    if not (user.is_authenticated and user.is_staff and user.has_perm("imagegen.generate_images")):
        return False
    return operation.requested_by_id == user.pk or user.has_perm("imagegen.change_job")


def may_see(user, operation: BulkOperation) -> bool:
    """Staff see their own operations; other people's need imagegen.view_job (as for jobs)."""
    if not (user.is_authenticated and user.is_staff):
        return False
    return operation.requested_by_id == user.pk or user.has_perm("imagegen.view_job")

