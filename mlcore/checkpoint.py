"""Save and load checkpoints as plain data, never as pickled code.

Loading always uses ``torch.load(weights_only=True)``: checkpoints may come
from uploads or shared storage, and a full unpickle would run arbitrary code.
So payloads hold only tensors, state_dicts and plain python values.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any, BinaryIO

import torch

from . import __version__

FORMAT = 1
REQUIRED_KEYS = ("format", "package_version", "kind", "config")

CheckpointTarget = str | os.PathLike | BinaryIO
CheckpointSource = str | os.PathLike | bytes | bytearray | BinaryIO


def save_checkpoint(payload: dict[str, Any], target: CheckpointTarget) -> None:
    """Write ``payload`` plus ``format`` and ``package_version`` to a path or binary file object."""
    if not isinstance(payload, dict):
        raise ValueError(f"checkpoint payload must be a dict, got {type(payload).__name__}")
    # Checked on save too, so a bad payload fails where it is made, not when read back.
    missing = [key for key in REQUIRED_KEYS if key not in ("format", "package_version") and key not in payload]
    if missing:
        raise ValueError(f"checkpoint payload is missing required keys {missing}")
    data = {**payload, "format": FORMAT, "package_version": __version__}
    torch.save(data, target)


def load_checkpoint(source: CheckpointSource, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (``weights_only=True``) and check its envelope.

    Raises ``ValueError`` when the data is not a checkpoint, holds anything but
    plain data, is of an unknown format, or lacks the keys every checkpoint has.
    """
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    try:
        data = torch.load(source, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except pickle.UnpicklingError as exc:
        raise ValueError(
            "refusing to load checkpoint: it contains objects other than tensors and "
            f"plain python data (weights_only=True): {exc}"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"not a readable checkpoint file: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"checkpoint must hold a dict, found {type(data).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ValueError(f"checkpoint is missing required keys {missing}")
    if data["format"] != FORMAT:
        raise ValueError(
            f"checkpoint format {data['format']!r} is not supported (this mlcore reads format {FORMAT})"
        )
    return data
