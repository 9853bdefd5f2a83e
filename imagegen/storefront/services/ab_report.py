"""The A/B report: per product, segment and arm, impressions, click-through and conversion with 95%
Wilson intervals, the bandit's current allocation, and the daily click-through for the plot."""
import math
import random
from collections import defaultdict

from django.db.models import Sum

from ...conf import settings
from ...models import GeneratedImage
from ..models import ArmStats
from . import bandit

Z95 = 1.959964
ALLOCATION_DRAWS = 2000


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (sensible at 0 and at small counts, unlike p ± z·se)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def report(*, product_id: int | None = None, segment_index: int | None = None) -> list[dict]:
    """One entry per (product, segment): its arms with their figures, and the daily series."""
    rows = ArmStats.objects.all()
    if product_id is not None:
        rows = rows.filter(product_id=product_id)
    if segment_index is not None:
        rows = rows.filter(segment_index=segment_index)
    totals = rows.values("product_id", "segment_index", "arm").annotate(
        impressions=Sum("impressions"), clicks=Sum("clicks"), purchases=Sum("purchases"), carts=Sum("add_to_carts")
    )
    daily: dict[tuple, list] = defaultdict(list)
    for row in rows.order_by("day").values("product_id", "segment_index", "arm", "day", "impressions", "clicks"):
        daily[(row["product_id"], row["segment_index"], row["arm"])].append(row)
    labels = dict(GeneratedImage.objects.filter(pk__in={t["arm"] for t in totals}).values_list("pk", "image"))
    groups: dict[tuple, dict] = {}
    for t in totals.order_by("product_id", "segment_index", "arm"):
        key = (t["product_id"], t["segment_index"])
        group = groups.setdefault(key, {"product": key[0], "segment": None if key[1] == ArmStats.NO_SEGMENT else key[1], "arms": []})
        n, clicks, purchases = t["impressions"] or 0, t["clicks"] or 0, t["purchases"] or 0
        group["arms"].append({
            "arm": t["arm"],
            "label": "original photo" if t["arm"] == ArmStats.ORIGINAL else f"variant #{t['arm']}",
            "image": labels.get(t["arm"]),
            "impressions": n, "clicks": clicks, "add_to_carts": t["carts"] or 0, "purchases": purchases,
            "ctr": clicks / n if n else None, "ctr_interval": wilson(clicks, n),
            "conversion": purchases / n if n else None, "conversion_interval": wilson(purchases, n),
            "daily": [
                {"day": d["day"].isoformat(), "impressions": d["impressions"],
                 "ctr": d["clicks"] / d["impressions"] if d["impressions"] else None}
                for d in daily[(t["product_id"], t["segment_index"], t["arm"])]
            ],
        })
    for group in groups.values():
        arms = [bandit.Arm(a["arm"], a["impressions"], a["clicks"]) for a in group["arms"]]
        share = bandit.allocation(arms, random.Random(0), settings.BANDIT_EXPLORATION, ALLOCATION_DRAWS)
        for a in group["arms"]:
            a["allocation"] = share[a["arm"]]
    return list(groups.values())
