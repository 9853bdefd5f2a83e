"""Near copies: a version's copy reference (its training photos' features and thumbnails with calibrated
thresholds, ``mlcore.metrics.copy_gate``) stored and loaded, and generated images checked against it."""
from io import BytesIO

import torch
from mlcore.checkpoint import load_checkpoint, save_checkpoint
from mlcore.data import stack_images
from mlcore.metrics.copy_gate import CopyReference


def reference_bytes(reference: CopyReference, product_ids: list[int]) -> bytes:
    """The stored form of a version's copy reference, with the product of each training photo."""
    buf = BytesIO()
    save_checkpoint({**reference.state(), "product_ids": torch.tensor(product_ids, dtype=torch.long)}, buf)
    return buf.getvalue()


def load_copy_reference(data: bytes) -> tuple[CopyReference, list[int]]:
    """(reference, product id of each training photo) from ``reference_bytes``' output (``weights_only``)."""
    state = load_checkpoint(BytesIO(data))
    return CopyReference.from_state(state), [int(pk) for pk in state["product_ids"]]


def check_copies(reference: CopyReference, extractor, images: list, size: int) -> list[dict]:
    """Per generated image (PIL): its verdict as a dict (``copy``, distances, thresholds, ``nearest`` index)."""
    return [verdict.to_dict() for verdict in reference.check(extractor, stack_images(images, size))]
