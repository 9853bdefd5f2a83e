"""Which arm (the original photo or a variant) a shopper is shown: Thompson sampling on click-through,
with an exploration floor.

Each arm's click-through rate has a Beta(1 + clicks, 1 + impressions - clicks) posterior; an impression
goes to the arm whose posterior draw is highest, except that a share ``exploration`` of impressions is
spread evenly over all arms whatever was learnt, so a variant that started unlucky still gets data.
Pure and seeded: the same counts and the same ``random.Random`` give the same choices.
"""
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    id: int  # ArmStats.ORIGINAL (0) or a GeneratedImage id
    impressions: int
    clicks: int


def choose(arms: list[Arm], rng: random.Random, exploration: float) -> int:
    """The id of the arm to show."""
    if not arms:
        raise ValueError("no arms to choose from")
    if not 0.0 <= exploration <= 1.0:
        raise ValueError(f"exploration must be in [0, 1], got {exploration}")
    if len(arms) == 1:
        return arms[0].id
    if rng.random() < exploration:
        return arms[rng.randrange(len(arms))].id
    draws = [
        rng.betavariate(1 + arm.clicks, 1 + max(0, arm.impressions - arm.clicks)) for arm in arms
    ]
    return arms[max(range(len(arms)), key=draws.__getitem__)].id


def allocation(arms: list[Arm], rng: random.Random, exploration: float, draws: int) -> dict[int, float]:
    """Share of ``draws`` impressions each arm would get now (for the admin report and the tests)."""
    counts = {arm.id: 0 for arm in arms}
    for _ in range(draws):
        counts[choose(arms, rng, exploration)] += 1
    return {arm_id: n / draws for arm_id, n in counts.items()}
