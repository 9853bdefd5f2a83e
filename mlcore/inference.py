"""How a frozen network runs its inference passes: chunked, and on CUDA with the fast path (bf16 autocast,
channels-last memory, ``torch.compile``, optionally with CUDA graphs).

On the CPU nothing changes unless asked: fp32, the network's own memory format, eager mode, so an image
is exactly what the plain forward gives. Every option keeps each image a function of its own inputs
only (no batch statistics at inference), which is what lets a pass pad its batch to a fixed size.
"""

from __future__ import annotations

from typing import Callable

import torch

from .inference_options import DEFAULT_CHUNK, InferenceOptions

__all__ = ["DEFAULT_CHUNK", "FastPath", "InferenceOptions", "bf16_supported"]

def bf16_supported(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _padded_size(count: int, chunk: int) -> int:
    """The next power of two (at most ``chunk``): a compiled network then sees a few batch sizes only,
    instead of recompiling (or recording a CUDA graph) for every count."""
    size = 1
    while size < count:
        size *= 2
    return min(size, chunk)


class FastPath:
    """Runs networks for inference on ``device`` with ``options`` applied; what it resolved to is in
    ``autocast_dtype``, ``channels_last`` and ``compile_mode``."""

    def __init__(self, device: torch.device, options: InferenceOptions | None = None) -> None:
        self.device = device
        self.options = options or InferenceOptions()
        on_cuda = device.type == "cuda"
        wants_bf16 = self.options.precision == "bf16" or (self.options.precision == "auto" and on_cuda)
        self.autocast_dtype = torch.bfloat16 if wants_bf16 and bf16_supported(device) else None
        self.channels_last = self.options.channels_last == "on" or (self.options.channels_last == "auto" and on_cuda)
        self.compile_mode = None if self.options.compile == "off" else self.options.compile
        self._prepared: dict[int, Callable] = {}

    def describe(self) -> dict:
        """What this path does, for logs and benchmark tables."""
        return {
            "device": str(self.device),
            "precision": "bf16" if self.autocast_dtype is not None else "fp32",
            "channels_last": self.channels_last,
            "compile": self.compile_mode or "off",
            "chunk": self.options.chunk,
        }

    def _prepare(self, network: torch.nn.Module) -> Callable:
        key = id(network)
        if key not in self._prepared:
            if self.channels_last:
                network.to(memory_format=torch.channels_last)
            # dynamic=False: batches are padded to a few sizes, each gets its own specialised kernels.
            self._prepared[key] = (
                torch.compile(network, mode=self.compile_mode, dynamic=False) if self.compile_mode else network
            )
        return self._prepared[key]

    @torch.inference_mode()
    def run(self, network: torch.nn.Module, *inputs: torch.Tensor | None) -> torch.Tensor:
        """``network(*inputs)`` in chunks along the first dimension, as fp32 on the CPU; ``None`` inputs
        are passed through as they are (e.g. no labels for an unconditional decoder)."""
        forward = self._prepare(network)
        count = next(len(x) for x in inputs if x is not None)
        chunk = self.options.chunk
        outputs = []
        for start in range(0, count, chunk):
            parts = [None if x is None else x[start : start + chunk] for x in inputs]
            size = len(next(p for p in parts if p is not None))
            padded = _padded_size(size, chunk) if self.compile_mode else size
            if padded > size:
                # Padding rows copy the chunk's first row; their outputs are dropped.
                parts = [None if p is None else torch.cat([p, p[:1].expand(padded - size, *p.shape[1:])]) for p in parts]
            parts = [None if p is None else p.to(self.device, non_blocking=True) for p in parts]
            with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                                enabled=self.autocast_dtype is not None):
                out = forward(*parts)
            outputs.append(out[:size].float().contiguous().cpu())
        return torch.cat(outputs)
