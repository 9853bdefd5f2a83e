"""Generate, score and encode product images with a trained "vae" / "cvae" checkpoint."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image

from ..checkpoint import CheckpointSource
from ..devices import resolve_device
from ..sampling import CHUNK, SamplerBase, load_ema_network
from .config import VAE_KINDS, VAEConfig, config_from_dict
from .networks import VAE
from .objective import gaussian_nll, kl_divergence


class Sampler(SamplerBase):
    """The EMA encoder/decoder of a checkpoint, frozen for inference.

    For the unconditional "vae" kind, ``class_name`` arguments are checked
    against the trained classes (so category routing still works) and otherwise
    ignored: the same seed gives the same image for every class.
    """

    def __init__(self, config: VAEConfig, model: VAE, *, package_version: str, step: int, device: torch.device) -> None:
        super().__init__(config, package_version=package_version, step=step, device=device)
        self.model = model.to(device).eval().requires_grad_(False)

    @classmethod
    def from_checkpoint(cls, source: CheckpointSource, *, device: str | torch.device = "cpu") -> Sampler:
        """Load a trainer checkpoint (path, bytes or binary file object) for sampling."""
        ckpt, config, model = load_ema_network(source, VAE_KINDS, config_from_dict, VAE)
        return cls(
            config, model,
            package_version=str(ckpt["package_version"]),
            step=int(ckpt.get("step", 0)),
            device=resolve_device(device),
        )

    def _labels(self, labels: torch.Tensor) -> torch.Tensor | None:
        return labels.to(self.device) if self.config.conditional else None

    def _forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.decode(z, labels)

    @torch.inference_mode()
    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Decoder means for latents ``z`` (N x latent_dim) and class ids: N x 3 x S x S in [-1, 1], CPU."""
        return self.fast.run(self.model.decoder, z, labels if self.config.conditional else None)

    @torch.inference_mode()
    def _encode_labelled(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outs = [
            self.model.encoder(x[i : i + CHUNK].to(self.device), self._labels(labels[i : i + CHUNK]))
            for i in range(0, len(x), CHUNK)
        ]
        return torch.cat([o[0] for o in outs]).cpu(), torch.cat([o[1] for o in outs]).cpu()

    def encode(self, images: list[Image.Image], class_name: str | Sequence[str] | None = None) -> torch.Tensor:
        """Posterior means mu of q(z|x[, y]) for RGB images: N x latent_dim float tensor on the CPU.

        Images are fitted into the model's square like training photos. A "cvae"
        needs each image's class (``class_name``, one or one per image, or the
        class ``generate`` stored on the image), else ``ValueError``.
        """
        if not images:
            raise ValueError("images must not be empty")
        names = self._class_names(images, class_name)
        if self.config.conditional and any(name is None for name in names):
            raise ValueError("a cvae needs the class of every image to encode it (pass class_name)")
        labels = torch.tensor([self.class_index(n) if n is not None else 0 for n in names], dtype=torch.long)
        return self._encode_labelled(self._pixels(images), labels)[0]

    @torch.inference_mode()
    def _scores_for(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        mu, logvar = self._encode_labelled(x, labels)
        x_hat = self.decode(mu, labels)
        neg_elbo = gaussian_nll(x_hat, x, self.config.recon_sigma) + kl_divergence(mu, logvar)
        return torch.exp(-neg_elbo / x[0].numel())

    def score(self, images: list[Image.Image], class_name: str | Sequence[str] | None = None) -> list[float]:
        """A rough 0..1 "fits the training photos" score per image: exp(-(negative ELBO) / D).

        The negative ELBO (reconstruction from the posterior mean, without the
        Gaussian constant, plus KL) is divided by the D = 3*S*S pixel values, so
        1 means perfectly reconstructed at no KL cost. Uncalibrated: not a
        probability, it depends on ``recon_sigma`` and the checkpoint, so compare
        scores only within one checkpoint. The class is ``class_name`` (one or
        one per image), else the one ``generate`` stored on the image, else (cvae)
        the class that scores best; the "vae" kind only validates it.
        """
        if not images:
            return []
        names = self._class_names(images, class_name)
        x = self._pixels(images)
        if not self.config.conditional:
            return [float(s) for s in self._scores_for(x, torch.zeros(len(x), dtype=torch.long))]
        return self._scores_by_class(x, names, self._scores_for)
