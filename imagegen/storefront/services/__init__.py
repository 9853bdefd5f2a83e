"""The storefront's services: the public API's, the periodic tasks' and the admin's one way in.

- ``shoppers``: shopper keys, opt-out, checking and recording events (``writing``, ``event_buffer``,
  ``impressions``: their storage, their Redis buffer and the tokens that verify them);
- ``serving``: which images a shopper is shown (``bandit``) and the cache of them;
- ``taste`` and ``personalize``: the segments and the variants made for them;
- ``ab_report``: the A/B results the admin shows.
"""
from ...conf import settings
from .ab_report import report as ab_report
from .personalize import request_scene_variants, request_variants
from .shoppers import flush_events, opt_out, purge_events, record_events
from .taste import assign_new_shoppers, refresh_segments

__all__ = [
    "ab_report",
    "assign_new_shoppers",
    "bandit_exploration",
    "flush_events",
    "opt_out",
    "purge_events",
    "record_events",
    "refresh_segments",
    "request_scene_variants",
    "request_variants",
]


def bandit_exploration() -> float:
    return settings.BANDIT_EXPLORATION
