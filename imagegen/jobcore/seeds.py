"""Seeds of the jobs that make images: each image's own, so a job can be made again exactly."""
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

SEED_MAX = 2**31 - 1


def new_seed() -> int:
    return secrets.randbelow(SEED_MAX)


def validate_seed(seed: Any) -> int:
    if seed is None:
        return new_seed()
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValidationError({"seed": _("Seed must be a whole number from 0 to %(max)s.") % {"max": SEED_MAX}})
    return seed
