"""trico.kernels: Triton kernels, each file = kernel + launcher + plain-torch reference.

`torch_reference()` switches the CUDA fast paths (QLinear dispatch, decode attention) off for a
block of code, so the GPU can run the exact torch reference path for A/B correctness checks.
`int8_activations()` lets one-row decode GEMVs quantize x to int8 (per 32 codes) and multiply with
`dp4a` (`gemv_a8.py`): faster, at int8 precision for the activations, so it is opt-in.
`fused_on_cpu()` does the opposite for CPU tensors under `TRITON_INTERPRET=1`: the fused decoder
block then runs its kernels in the interpreter, so CPU tests cover the CUDA code path.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_STATE = {"enabled": True, "cpu": False, "a8": False}


def kernels_enabled() -> bool:
    """Whether CUDA code should take the Triton kernels (False inside torch_reference())."""
    return _STATE["enabled"]


@contextmanager
def torch_reference() -> Iterator[None]:
    """Run the plain-torch reference path on CUDA too, within the block."""
    prev = _STATE["enabled"]
    _STATE["enabled"] = False
    try:
        yield
    finally:
        _STATE["enabled"] = prev


def fused_path(x: torch.Tensor) -> bool:
    """Whether the fused (Triton) decoder path runs for tensors like x: on CUDA, or on CPU inside fused_on_cpu()."""
    return _STATE["enabled"] and (x.is_cuda or _STATE["cpu"])


@contextmanager
def fused_on_cpu() -> Iterator[None]:
    """Run the fused decoder path on CPU tensors within the block (needs TRITON_INTERPRET=1)."""
    prev = _STATE["cpu"]
    _STATE["cpu"] = True
    try:
        yield
    finally:
        _STATE["cpu"] = prev


def a8_enabled() -> bool:
    """Whether one-row decode GEMVs may use int8 activations (inside int8_activations())."""
    return _STATE["a8"]


@contextmanager
def int8_activations(on: bool = True) -> Iterator[None]:
    """Let one-row decode GEMVs run with int8 activations within the block (a CUDA graph captured
    inside keeps the choice)."""
    prev = _STATE["a8"]
    _STATE["a8"] = on
    try:
        yield
    finally:
        _STATE["a8"] = prev
