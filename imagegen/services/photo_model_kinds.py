"""The kinds of model the photo operations use, as the shop sees them: each operation that needs a model
names its kind and label (``operations``); how a kind is trained, validated and loaded is mlcore's
registry's, reached through the backend."""
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

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


# Models trained per scene set, not on products (``services.scene_sets``); loaded and activated like photo models.
SCENE_SET_MODELS: dict[str, PhotoModel] = {"scenes": PhotoModel(_("Scene generator"))}


def trainable_models() -> dict[str, PhotoModel]:
    """Every photo model kind a training job may train: the operations' and the scene sets'."""
    return {**photo_models(), **SCENE_SET_MODELS}


def is_photo_model(kind: str) -> bool:
    return kind in photo_models() or kind in SCENE_SET_MODELS


def is_scene_set_model(kind: str) -> bool:
    return kind in SCENE_SET_MODELS
