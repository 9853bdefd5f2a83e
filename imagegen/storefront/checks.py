"""The storefront's configuration mistakes, reported by Django's system checks. Its settings are imagegen's
(``IMAGEGEN_*``, ``imagegen.conf``), and so are the ids, unchanged since these checks were the core's."""
from django.core import checks

from ..conf import settings


@checks.register()
def check_storefront(app_configs=None, **kwargs):
    from rest_framework.throttling import SimpleRateThrottle

    errors = []
    rate = settings.STOREFRONT_THROTTLE_RATE
    try:
        if rate is not None:
            SimpleRateThrottle.parse_rate(None, rate)
    except (ValueError, KeyError, AttributeError, TypeError):
        errors.append(checks.Error(
            f"IMAGEGEN_STOREFRONT_THROTTLE_RATE is {rate!r}, which is not a rate.",
            hint='Write "<number>/<second|minute|hour|day>", e.g. "1200/minute", or None for no limit.',
            id="imagegen.E016",
        ))

    def whole(value, least: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= least

    exploration = settings.BANDIT_EXPLORATION
    if not (
        whole(settings.SEGMENTS, 1) and whole(settings.EVENTS_PER_REQUEST, 1) and whole(settings.EVENT_FLUSH_BATCH, 1)
        and whole(settings.STOREFRONT_CACHE_SECONDS, 0)
        and isinstance(settings.SEGMENT_MIN_EVENTS, (int, float)) and not isinstance(settings.SEGMENT_MIN_EVENTS, bool)
        and settings.SEGMENT_MIN_EVENTS > 0
        and isinstance(exploration, (int, float)) and not isinstance(exploration, bool) and 0 <= exploration <= 1
    ):
        errors.append(checks.Error(
            "IMAGEGEN_SEGMENTS, IMAGEGEN_EVENTS_PER_REQUEST and IMAGEGEN_EVENT_FLUSH_BATCH must be whole numbers >= 1, "
            "IMAGEGEN_STOREFRONT_CACHE_SECONDS >= 0, IMAGEGEN_SEGMENT_MIN_EVENTS > 0 and IMAGEGEN_BANDIT_EXPLORATION "
            "from 0 to 1.",
            id="imagegen.E017",
        ))
    retention, delta_e = settings.EVENT_RETENTION_DAYS, settings.VARIANT_REMAKE_DELTA_E
    if not (
        whole(settings.IMPRESSION_TOKEN_SECONDS, 1) and (retention is None or whole(retention, 1))
        and isinstance(delta_e, (int, float)) and not isinstance(delta_e, bool) and delta_e >= 0
    ):
        errors.append(checks.Error(
            "IMAGEGEN_IMPRESSION_TOKEN_SECONDS must be a whole number >= 1, IMAGEGEN_EVENT_RETENTION_DAYS a whole "
            "number >= 1 or None, and IMAGEGEN_VARIANT_REMAKE_DELTA_E a number >= 0.",
            id="imagegen.E060",
        ))
    return errors
