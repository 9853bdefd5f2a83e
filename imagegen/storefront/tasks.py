"""The storefront's periodic tasks (Celery beat), on the light queue. Their names are the ones they had as
imagegen's tasks, so beat schedules and queued messages keep working."""
from celery import shared_task

from . import services


@shared_task(name="imagegen.flush_events", ignore_result=True)
def flush_events() -> int:
    """Periodic (every few seconds): write the buffered storefront events in bulk."""
    return services.flush_events()


@shared_task(name="imagegen.purge_events", ignore_result=True)
def purge_events() -> int:
    """Periodic (daily): delete the storefront events older than IMAGEGEN_EVENT_RETENTION_DAYS."""
    return services.purge_events()


@shared_task(name="imagegen.assign_shoppers", ignore_result=True)
def assign_shoppers() -> int:
    """Periodic (every minute): put new shoppers with enough events into their nearest segment."""
    return services.assign_new_shoppers()


@shared_task(name="imagegen.refresh_segments", ignore_result=True)
def refresh_segments() -> dict:
    """Periodic (hourly, say): regroup the shoppers, then queue the variants that are missing or out of date."""
    summary = services.refresh_segments()
    summary["variant_jobs"] = len(services.request_variants())
    return summary
