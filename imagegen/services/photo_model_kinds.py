"""The kinds of model the photo operations use, as the shop sees them: each operation that needs a model
names its kind and label (``operations``); how a kind is trained, validated and loaded is mlcore's
registry's, reached through the backend."""
from dataclasses import dataclass

from django.utils.functional import Promise

from .operations import all_operations


@dataclass(frozen=True)
class PhotoModel:
    label: str | Promise


def photo_models() -> dict[str, PhotoModel]:
    """The model kinds the registered operations need, by kind, in the operations' order."""
    kinds: dict[str, PhotoModel] = {}
    for operation in all_operations():
        if operation.model_kind and operation.model_kind not in kinds:
            kinds[operation.model_kind] = PhotoModel(operation.model_label or operation.model_kind)
    return kinds


def is_photo_model(kind: str) -> bool:
    return kind in photo_models()
