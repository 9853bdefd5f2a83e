"""Every model kind mlcore trains, once, by the name its checkpoints carry: its config, its objective (what the
one ``training.Trainer`` composes), the class that loads a checkpoint for use (a generator's sampler, a photo
model's restorer, inpainter ...) and, for photo models, how a shop's photos become its training data.

Adding a kind is adding a line here (and its package: config, networks, objective, sampler); the contract
test (tests/test_model_contract.py) then trains, saves, resumes, loads and uses it like every other kind.

Imports happen on first use, so listing the kinds (Django's system checks do) does not load torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

GENERATOR = "generator"
PHOTO_MODEL = "photo model"


@dataclass(frozen=True)
class Kind:
    """One kind, its parts as "module:attribute" paths (``load`` imports them).

    ``sampler`` has ``from_checkpoint(source, device=...)``. ``prepare`` (photo models) is
    ``(PIL photos, **config options) -> (config, data)``: ``Trainer(config, *data, ...)`` trains on them.
    ``validate`` (optional) is ``(checkpoint bytes, held-out PIL photos, seed) -> {"photos": n, "tasks": {task: choice}}``
    (per task the method that won on the held-out photos, ``method_choice.choose``).
    ``adversarial``: a discriminator sees real images, so the objective takes the R1 penalty."""

    family: str
    label: str
    config: str
    objective: str
    sampler: str
    prepare: str | None = None
    validate: str | None = None
    adversarial: bool = False


MODEL_KINDS: dict[str, Kind] = {
    "cgan": Kind(
        GENERATOR, "Class-conditional GAN", "mlcore.gan.config:GANConfig", "mlcore.gan.objective:GANObjective",
        "mlcore.gan.sampler:Sampler", adversarial=True,
    ),
    "tcgan": Kind(
        GENERATOR, "Text-conditional GAN", "mlcore.textgan.config:TextGANConfig",
        "mlcore.textgan.objective:TextGANObjective", "mlcore.textgan.sampler:Sampler", adversarial=True,
    ),
    "vae": Kind(
        GENERATOR, "Variational autoencoder", "mlcore.vae.config:VAEConfig", "mlcore.vae.objective:VAEObjective",
        "mlcore.vae.sampler:Sampler",
    ),
    "cvae": Kind(
        GENERATOR, "Class-conditional VAE", "mlcore.vae.config:CVAEConfig", "mlcore.vae.objective:VAEObjective",
        "mlcore.vae.sampler:Sampler",
    ),
    "ddpm": Kind(
        GENERATOR, "Diffusion model", "mlcore.diffusion.config:DiffusionConfig",
        "mlcore.diffusion.objective:DiffusionObjective", "mlcore.diffusion.sampler:Sampler",
    ),
    "restore": Kind(
        PHOTO_MODEL, "Enhancement (restoration) model", "mlcore.restoration.config:RestorationConfig",
        "mlcore.restoration.objective:RestorationObjective", "mlcore.restoration.sampler:Restorer",
        prepare="mlcore.restoration.data:training_set", validate="mlcore.restoration.validation:validate_checkpoint",
    ),
    "inpaint": Kind(
        PHOTO_MODEL, "Repair (inpainting) model", "mlcore.inpainting.config:InpaintConfig",
        "mlcore.inpainting.objective:InpaintObjective", "mlcore.inpainting.sampler:Inpainter",
        prepare="mlcore.inpainting.data:training_set", validate="mlcore.inpainting.validation:validate_checkpoint",
    ),
    "background": Kind(
        PHOTO_MODEL, "Background cut-out model", "mlcore.background.config:SegmenterConfig",
        "mlcore.background.objective:SegmentationObjective", "mlcore.background.sampler:Segmenter",
        prepare="mlcore.background.data:training_set",
    ),
    "brandlook": Kind(
        PHOTO_MODEL, "Brand look model", "mlcore.brandlook.config:BrandLookConfig",
        "mlcore.brandlook.objective:BrandLookObjective", "mlcore.brandlook.sampler:BrandLook",
        prepare="mlcore.brandlook.data:training_set",
    ),
    "harmonise": Kind(
        PHOTO_MODEL, "Harmonisation model", "mlcore.harmonise.config:HarmoniseConfig",
        "mlcore.harmonise.objective:HarmoniseObjective", "mlcore.harmonise.sampler:Harmoniser",
        prepare="mlcore.harmonise.data:training_set",
    ),
    "scenes": Kind(
        PHOTO_MODEL, "Scene generator", "mlcore.scenegen.config:SceneGANConfig",
        "mlcore.scenegen.objective:SceneGANObjective", "mlcore.scenegen.sampler:SceneGenerator",
        prepare="mlcore.scenegen.data:training_set",
    ),
}

# The generator kinds alone: what imagegen's IMAGEGEN_KINDS are checked against and bench/quality.py lists.
KINDS: dict[str, Kind] = {name: kind for name, kind in MODEL_KINDS.items() if kind.family == GENERATOR}
PHOTO_MODEL_KINDS: dict[str, Kind] = {name: kind for name, kind in MODEL_KINDS.items() if kind.family == PHOTO_MODEL}
# Kinds whose objective takes the R1 gradient penalty.
R1_KINDS = tuple(name for name, kind in MODEL_KINDS.items() if kind.adversarial)


@dataclass(frozen=True)
class KindSpec:
    """A kind's parts, imported. ``trainer`` is the one ``Trainer`` (the same for every kind)."""

    name: str
    family: str
    label: str
    config: Any
    objective: Any
    sampler: Any
    trainer: Any
    prepare: Any = None
    validate: Any = None


def _import(path: str) -> Any:
    module, attribute = path.split(":")
    return getattr(import_module(module), attribute)


def _entry(name: str) -> Kind:
    try:
        return MODEL_KINDS[name]
    except KeyError:
        raise KeyError(f"Unknown model kind {name!r}; known: {', '.join(sorted(MODEL_KINDS))}") from None


def load(name: str, part: str) -> Any:
    """One part ("config", "objective", "sampler", "prepare", "validate") of kind ``name``, imported; None
    for a part the kind has not."""
    path = getattr(_entry(name), part)
    return None if path is None else _import(path)


def get_kind(name: str) -> KindSpec:
    """The parts that make up kind ``name``; KeyError names the known kinds."""
    kind = _entry(name)
    return KindSpec(
        name, kind.family, kind.label,
        *(load(name, part) for part in ("config", "objective", "sampler")),
        _import("mlcore.training.trainer:Trainer"),
        *(load(name, part) for part in ("prepare", "validate")),
    )
