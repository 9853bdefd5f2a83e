"""What the backend answers without loading torch: its version, the kinds it trains, the inference options
it accepts. The system checks and the web processes ask these."""
from collections.abc import Sequence

import mlcore
from mlcore.conditioning.colour import COLOUR_NAMES, colour_rgb, lab_to_srgb, srgb_to_lab
from mlcore.inpainting.margins import ASPECTS, check_margins, margins_for
from mlcore.inference_options import CHANNELS_LAST, COMPILE_MODES, DEFAULT_CHUNK, PRECISIONS, InferenceOptions
from mlcore.registry import KINDS, PHOTO_MODEL_KINDS, R1_KINDS

# How the storefront's taste features scale CIELAB's L, a and b (``taste.taste_features``).
LAB_SCALE = (100.0, 128.0, 128.0)

# imagegen's name of a photo-model kind where mlcore's (which its checkpoints carry) differs. Stored model
# versions and jobs say "segment", so the name stays in imagegen.
MLCORE_NAMES = {"segment": "background"}


class LightMixin:
    @property
    def version(self) -> str:
        """The version of the model code, stored with every model version and in every image's metadata."""
        return mlcore.__version__

    def generator_kinds(self) -> tuple[str, ...]:
        return tuple(KINDS)

    def photo_model_kinds(self) -> tuple[str, ...]:
        """The kinds of model the photo operations may need, by imagegen's names."""
        imagegen_names = {mlcore: ours for ours, mlcore in MLCORE_NAMES.items()}
        return tuple(imagegen_names.get(name, name) for name in PHOTO_MODEL_KINDS)

    def r1_kinds(self) -> tuple[str, ...]:
        """The generator kinds with a discriminator on real images (the R1 penalty applies to them)."""
        return tuple(R1_KINDS)

    def inference_choices(self) -> dict[str, tuple]:
        return {"precision": tuple(PRECISIONS), "channels_last": tuple(CHANNELS_LAST), "compile": tuple(COMPILE_MODES)}

    def colour_lab(self, rgb: tuple[int, int, int]) -> tuple[float, float, float]:
        """CIELAB (D65) of one 8-bit sRGB colour (the storefront's colour differences)."""
        return srgb_to_lab(rgb)

    def colour_names(self) -> tuple[str, ...]:
        """The colour names a colourway may be asked for by (else "#rrggbb")."""
        return COLOUR_NAMES

    def colour_rgb(self, colour: str) -> tuple[int, int, int]:
        """8-bit sRGB of a colour name or "#rrggbb"; a ValueError otherwise."""
        return colour_rgb(colour)

    def expand_aspects(self) -> tuple[str, ...]:
        """The aspect ratios Expand offers ("4:5": width 4, height 5)."""
        return tuple(ASPECTS)

    def expand_margins(self, size: tuple[int, int], *, aspect: str | None = None, margins=None,
                       check: bool = True) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) pixels Expand adds to a ``size`` photo for ``aspect`` or ``margins``; with
        ``check``, a ValueError when they are out of bounds."""
        margins = tuple(margins) if aspect is None else margins_for(size, aspect)
        if check:
            check_margins(size, margins)
        return margins

    def taste_colour(self, features: Sequence[float]) -> str:
        """The "#rrggbb" colour of three taste features (CIELAB's L, a and b over ``LAB_SCALE``), which a web
        process asks for when a product's photo changes (the storefront's backdrop colours)."""
        lab = [value * scale for value, scale in zip(features, LAB_SCALE)]
        return "#" + "".join(f"{round(v * 255):02x}" for v in lab_to_srgb(lab))

    def inference_options(self, *, precision: str, channels_last, compile: str, max_batch: int) -> InferenceOptions:
        """The fast-path options; a pass holds up to ``max_batch`` images, so the sampler's chunk is at least that."""
        return InferenceOptions(
            precision=precision, channels_last=channels_last, compile=compile, chunk=max(DEFAULT_CHUNK, max_batch)
        )
