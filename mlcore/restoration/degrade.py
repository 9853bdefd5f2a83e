"""Synthetic photo degradations: what the restoration network learns to undo and what the benchmark applies.

Images are float tensors 3 x H x W (or N x 3 x H x W) with values in [0, 1]; ``to_float`` / ``to_uint8``
convert from and to uint8. Every random draw takes a ``torch.Generator``, so the same seed gives the same
degraded image. The chain follows a camera pipeline, in this order:

    tone (exposure gain/gamma, white-balance gains) -> blur -> downscale -> noise -> JPEG

and ends on uint8 levels, since a shop's photo is a uint8 file. A downscaled ``Degradation`` returns the small
image the shop would have; ``network_input`` enlarges it back with bicubic interpolation, which is what the
restorer does before its network runs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torchvision.io import decode_jpeg, encode_jpeg

from ..photos import to_float, to_uint8

SCALES = (1, 2, 4)
# Gaussian kernels reach this many sigmas on each side (beyond it the weights are below 0.1 % of the peak).
BLUR_TRUNCATE = 3.0
# The mix the trainer draws from: ranges cover the benchmark's fixed levels and go beyond them.
NOISE_SIGMA_RANGE = (3.0, 35.0)  # 0-255 units
BLUR_SIGMA_RANGE = (0.6, 2.5)  # pixels
JPEG_QUALITY_RANGE = (10, 75)
GAIN_RANGE = (0.5, 1.6)  # log-uniform
GAMMA_RANGE = (0.75, 1.4)  # log-uniform
CAST_RANGE = (0.78, 1.25)  # log-uniform gain of red and of blue against green
MIX_KINDS = ("noise", "blur", "jpeg", "downscale", "exposure", "colour")
# Each training sample gets one "primary" degradation (or, with PRIMARY_NONE, none: the network must also
# leave clean photos alone), and each other kind independently with SECONDARY_P, for realistic mixtures.
# The primary is drawn with these weights: the tone kinds are rarer because the tone network also learns
# from extra previews every step (the trainer's ``tone_batch``), and the enlargements, the hardest to learn, commoner.
PRIMARY_WEIGHTS = {"noise": 1.5, "blur": 1.0, "jpeg": 1.5, "downscale": 2.0, "exposure": 0.75, "colour": 0.75}
PRIMARY_NONE = 0.08
SECONDARY_P = 0.15


def quantize(image: torch.Tensor) -> torch.Tensor:
    """Round to the 256 levels of a uint8 file, staying float."""
    return image.mul(255.0).round_().clamp_(0, 255).div_(255.0)


def _batched(image: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if image.dim() == 3:
        return image.unsqueeze(0), True
    if image.dim() == 4:
        return image, False
    raise ValueError(f"expected 3 x H x W or N x 3 x H x W, got shape {tuple(image.shape)}")


def add_noise(image: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """Additive white gaussian noise with standard deviation ``sigma`` in 0-255 units, clipped to [0, 1]."""
    noise = torch.randn(image.shape, generator=generator, dtype=image.dtype) * (float(sigma) / 255.0)
    return (image + noise.to(image.device)).clamp_(0.0, 1.0)


def gaussian_kernel(sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1-D gaussian of standard deviation ``sigma`` (pixels), radius ceil(3 sigma)."""
    radius = max(1, math.ceil(BLUR_TRUNCATE * float(sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=dtype)
    kernel = torch.exp(-0.5 * (offsets / float(sigma)) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable gaussian blur; borders are reflected, as a lens sees the scene continue past the frame."""
    x, single = _batched(image)
    kernel = gaussian_kernel(sigma).to(x)
    radius = (len(kernel) - 1) // 2
    channels = x.shape[1]
    # Reflect padding needs the pad to be smaller than the side; replicate covers tiny images.
    mode = "reflect" if min(x.shape[-2:]) > radius else "replicate"
    x = F.pad(x, (radius, radius, radius, radius), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return x[0] if single else x


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """Encode as a baseline JPEG at ``quality`` (libjpeg's default 4:2:0 chroma subsampling) and decode."""
    x, single = _batched(image)
    out = torch.stack([
        decode_jpeg(encode_jpeg(to_uint8(img.cpu()), quality=int(quality))).to(image.device) for img in x
    ])
    out = to_float(out)
    return out[0] if single else out


def downscale(image: torch.Tensor, factor: int) -> torch.Tensor:
    """The image ``factor`` times smaller (antialiased bicubic, like Pillow's resize), on uint8 levels.

    H and W must be multiples of ``factor``, so enlarging it again restores the exact size."""
    x, single = _batched(image)
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        raise ValueError(f"{h} x {w} is not divisible by the downscale factor {factor}")
    small = F.interpolate(x, size=(h // factor, w // factor), mode="bicubic", antialias=True, align_corners=False)
    small = quantize(small)
    return small[0] if single else small


def upscale_bicubic(image: torch.Tensor, factor: int) -> torch.Tensor:
    """Bicubic enlargement by ``factor`` (the restorer's first step when upscaling), clipped to [0, 1]."""
    if factor == 1:
        return image
    x, single = _batched(image)
    big = F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False).clamp_(0.0, 1.0)
    return big[0] if single else big


def tone(image: torch.Tensor, gains: tuple[float, float, float], gamma: float) -> torch.Tensor:
    """Per-channel gain after a gamma: clip(g_c * x_c ** gamma). Exposure is one gain on all channels; a
    white-balance error (colour cast) is a different gain per channel."""
    x, single = _batched(image)
    g = torch.tensor(gains, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    out = (g * x.clamp_min(0.0).pow(float(gamma))).clamp_(0.0, 1.0)
    return out[0] if single else out


@dataclass(frozen=True)
class Degradation:
    """One degradation chain; fields at their defaults do nothing.

    ``gain`` and ``gamma`` are the exposure error, ``cast`` the white-balance gains (R, G, B), ``scale`` the
    downscale factor (1, 2 or 4), ``noise_sigma`` in 0-255 units, ``jpeg_quality`` 1-100 or None.
    """

    gain: float = 1.0
    gamma: float = 1.0
    cast: tuple[float, float, float] = (1.0, 1.0, 1.0)
    blur_sigma: float = 0.0
    scale: int = 1
    noise_sigma: float = 0.0
    jpeg_quality: int | None = None

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if self.jpeg_quality is not None and not 1 <= int(self.jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be 1-100, got {self.jpeg_quality!r}")
        if self.gain <= 0 or self.gamma <= 0 or min(self.cast) <= 0:
            raise ValueError("gain, gamma and cast gains must be > 0")
        if self.blur_sigma < 0 or self.noise_sigma < 0:
            raise ValueError("blur_sigma and noise_sigma must be >= 0")
        object.__setattr__(self, "cast", tuple(float(c) for c in self.cast))

    @property
    def tone_gains(self) -> tuple[float, float, float]:
        return tuple(self.gain * c for c in self.cast)

    @property
    def changes_tone(self) -> bool:
        return self.gamma != 1.0 or any(g != 1.0 for g in self.tone_gains)

    def inverse_tone(self) -> torch.Tensor:
        """(log g_R, log g_G, log g_B, log gamma') of the curve g_c * y ** gamma' that undoes the tone step
        (exactly where nothing was clipped): x = (y / G_c) ** (1 / gamma) = G_c ** (-1 / gamma) * y ** (1 / gamma)."""
        log_gamma = math.log(self.gamma)
        logs = [-math.log(g) / self.gamma for g in self.tone_gains]
        return torch.tensor([*logs, -log_gamma], dtype=torch.float32)

    def apply(self, image: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The degraded photo a shop would have (``scale`` times smaller when downscaled), on uint8 levels.

        ``generator`` is needed when the chain adds noise."""
        x = image
        if self.changes_tone:
            x = tone(x, self.tone_gains, self.gamma)
        if self.blur_sigma > 0:
            x = gaussian_blur(x, self.blur_sigma)
        if self.scale > 1:
            x = downscale(x, self.scale)
        if self.noise_sigma > 0:
            if generator is None:
                raise ValueError("adding noise needs a torch.Generator")
            x = add_noise(x, self.noise_sigma, generator)
        if self.jpeg_quality is not None:
            x = jpeg(x, self.jpeg_quality)
        return quantize(x)

    def network_input(self, degraded: torch.Tensor) -> torch.Tensor:
        """What the restorer's network sees for ``apply``'s output: enlarged back to full size (bicubic)."""
        return upscale_bicubic(degraded, self.scale)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["cast"] = list(self.cast)
        return data


# The benchmark's fixed degradations, by name.
NAMED: dict[str, Degradation] = {
    "noise15": Degradation(noise_sigma=15.0),
    "noise25": Degradation(noise_sigma=25.0),
    "blur": Degradation(blur_sigma=1.5),
    "jpeg20": Degradation(jpeg_quality=20),
    "downscale2": Degradation(scale=2),
    "downscale4": Degradation(scale=4),
    "underexposed": Degradation(gain=0.6, gamma=1.25),
    "overexposed": Degradation(gain=1.35, gamma=0.85),
    "colourcast": Degradation(cast=(1.12, 1.0, 0.82)),
}


def named(name: str) -> Degradation:
    """The benchmark degradation called ``name``; ``KeyError`` lists the names."""
    try:
        return NAMED[name]
    except KeyError:
        raise KeyError(f"unknown degradation {name!r}; known: {', '.join(NAMED)}") from None


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def _log_uniform(generator: torch.Generator, low: float, high: float) -> float:
    return math.exp(_uniform(generator, math.log(low), math.log(high)))


def _draw(kind: str, generator: torch.Generator) -> dict:
    if kind == "noise":
        return {"noise_sigma": _uniform(generator, *NOISE_SIGMA_RANGE)}
    if kind == "blur":
        return {"blur_sigma": _uniform(generator, *BLUR_SIGMA_RANGE)}
    if kind == "jpeg":
        low, high = JPEG_QUALITY_RANGE
        return {"jpeg_quality": int(torch.randint(low, high + 1, (), generator=generator))}
    if kind == "downscale":
        return {"scale": 2 if float(torch.rand((), generator=generator)) < 0.5 else 4}
    if kind == "exposure":
        return {"gain": _log_uniform(generator, *GAIN_RANGE), "gamma": _log_uniform(generator, *GAMMA_RANGE)}
    if kind == "colour":
        red, blue = _log_uniform(generator, *CAST_RANGE), _log_uniform(generator, *CAST_RANGE)
        return {"cast": (red, 1.0, blue)}
    raise ValueError(f"unknown degradation kind {kind!r}; known: {MIX_KINDS}")


def random_degradation(generator: torch.Generator, kinds: tuple[str, ...] = MIX_KINDS) -> Degradation:
    """A training degradation: one primary kind of ``kinds`` (or none, rarely) plus occasional others."""
    unknown = [k for k in kinds if k not in MIX_KINDS]
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {MIX_KINDS}, got {kinds}")
    chosen: list[str] = []
    if float(torch.rand((), generator=generator)) >= PRIMARY_NONE:
        weights = torch.tensor([PRIMARY_WEIGHTS[k] for k in kinds])
        chosen.append(kinds[int(torch.multinomial(weights, 1, generator=generator))])
    # One draw per kind whatever was chosen, so the number of draws (and every later sample) does not
    # depend on the primary pick.
    extra = torch.rand(len(kinds), generator=generator)
    chosen += [k for k, p in zip(kinds, extra.tolist(), strict=True) if p < SECONDARY_P and k not in chosen]
    fields: dict = {}
    for kind in MIX_KINDS:  # fixed order keeps the draws reproducible
        if kind in chosen:
            fields.update(_draw(kind, generator))
    return replace(Degradation(), **fields)
