"""Generator kinds by short name ("cgan", ...): which config, trainer and sampler make up each.

Imports happen on first use, so listing the kinds (Django's system checks do) does not load torch.
"""
from dataclasses import dataclass
from importlib import import_module
from typing import Any

# kind -> (config class, trainer class, sampler class), as "module:attribute" paths.
KINDS: dict[str, tuple[str, str, str]] = {
    "cgan": ("mlcore.config:GANConfig", "mlcore.trainer:Trainer", "mlcore.sampler:Sampler"),
    "vae": ("mlcore.vae.config:VAEConfig", "mlcore.vae.trainer:Trainer", "mlcore.vae.sampler:Sampler"),
    "cvae": ("mlcore.vae.config:CVAEConfig", "mlcore.vae.trainer:Trainer", "mlcore.vae.sampler:Sampler"),
    "ddpm": ("mlcore.diffusion.config:DiffusionConfig", "mlcore.diffusion.trainer:Trainer", "mlcore.diffusion.sampler:Sampler"),
    "tcgan": (
        "mlcore.textgan.config:TextGANConfig", "mlcore.textgan.trainer:Trainer", "mlcore.textgan.sampler:Sampler"
    ),
}

# Kinds whose trainer takes the R1 gradient penalty (a discriminator that sees real images).
R1_KINDS = ("cgan", "tcgan")


@dataclass(frozen=True)
class KindSpec:
    name: str
    config: Any
    trainer: Any
    sampler: Any


def _load(path: str) -> Any:
    module, attribute = path.split(":")
    return getattr(import_module(module), attribute)


def get_kind(name: str) -> KindSpec:
    """The classes that make up generator kind ``name``; KeyError names the known kinds."""
    try:
        paths = KINDS[name]
    except KeyError:
        raise KeyError(f"Unknown generator kind {name!r}; known: {', '.join(sorted(KINDS))}") from None
    return KindSpec(name, *(_load(p) for p in paths))
