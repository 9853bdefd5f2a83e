"""The one trainer of every kind (``Trainer``), composed with the kind's objective (``Objective``)."""

from .objective import Objective
from .trainer import Trainer

__all__ = ["Objective", "Trainer"]
