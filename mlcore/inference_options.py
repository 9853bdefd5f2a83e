"""The options of the inference fast path (mlcore.inference), without importing torch: a web process
checks its settings against them and never loads torch."""

from __future__ import annotations

from dataclasses import dataclass

# Generation runs in chunks of at most this many images unless the options say otherwise, so memory stays
# bounded for large counts.
DEFAULT_CHUNK = 64
PRECISIONS = ("auto", "fp32", "bf16")
CHANNELS_LAST = ("auto", "on", "off")
# torch.compile modes; "reduce-overhead" records CUDA graphs (one per padded batch size).
COMPILE_MODES = ("off", "default", "reduce-overhead", "max-autotune")


@dataclass(frozen=True)
class InferenceOptions:
    """``precision``: "auto" (bf16 autocast on a CUDA device that supports it, fp32 elsewhere), "fp32" or
    "bf16" (CUDA only: on the CPU it stays fp32). ``channels_last``: "auto" (on CUDA), "on" or "off".
    ``compile``: a ``torch.compile`` mode or "off". ``chunk``: most images in one forward pass."""

    precision: str = "auto"
    channels_last: str = "auto"
    compile: str = "off"
    chunk: int = DEFAULT_CHUNK

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.channels_last not in CHANNELS_LAST:
            raise ValueError(f"channels_last must be one of {CHANNELS_LAST}, got {self.channels_last!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {COMPILE_MODES}, got {self.compile!r}")
        if isinstance(self.chunk, bool) or not isinstance(self.chunk, int) or self.chunk < 1:
            raise ValueError(f"chunk must be an int >= 1, got {self.chunk!r}")
