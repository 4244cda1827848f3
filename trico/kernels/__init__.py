"""trico.kernels: Triton kernels, each file = kernel + launcher + plain-torch reference.

Five switches, each a context manager over a block of code:
- `torch_reference()` turns the CUDA fast paths (QLinear dispatch, decode attention) off, so the
  GPU can run the exact torch reference path for A/B correctness checks;
- `int8_activations()` lets one-row decode GEMVs quantize x to int8 (per 32 codes) and multiply
  with `dp4a` (`gemv_a8.py`): faster, at int8 precision for the activations, so it is opt-in;
- `fused_on_cpu()` runs the fused decoder block on CPU tensors under `TRITON_INTERPRET=1`, so CPU
  tests cover the CUDA code path;
- `programmatic_launch(False)` launches the decode kernels without programmatic dependent launch
  (`pdl.py`), for same-run A/B timing;
- `fused_prologues(False)` runs RMSNorm and the SiLU gate as kernels of their own instead of inside
  the projection that consumes them (`prologue.py`), for same-run A/B timing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

_STATE = {"enabled": True, "cpu": False, "a8": False, "pdl": True, "prologues": True}


@contextmanager
def _switched(key: str, value: bool) -> Iterator[None]:
    prev = _STATE[key]
    _STATE[key] = value
    try:
        yield
    finally:
        _STATE[key] = prev


def kernels_enabled() -> bool:
    """Whether CUDA code should take the Triton kernels (False inside torch_reference())."""
    return _STATE["enabled"]


def torch_reference() -> AbstractContextManager[None]:
    """Run the plain-torch reference path on CUDA too, within the block."""
    return _switched("enabled", False)


def fused_path(x: torch.Tensor) -> bool:
    """Whether the fused (Triton) decoder path runs for tensors like x: on CUDA, or on CPU inside fused_on_cpu()."""
    return _STATE["enabled"] and (x.is_cuda or _STATE["cpu"])


def fused_on_cpu() -> AbstractContextManager[None]:
    """Run the fused decoder path on CPU tensors within the block (needs TRITON_INTERPRET=1)."""
    return _switched("cpu", True)


def a8_enabled() -> bool:
    """Whether one-row decode GEMVs may use int8 activations (inside int8_activations())."""
    return _STATE["a8"]


def int8_activations(on: bool = True) -> AbstractContextManager[None]:
    """Let one-row decode GEMVs run with int8 activations within the block (a CUDA graph captured
    inside keeps the choice)."""
    return _switched("a8", on)


def pdl_allowed() -> bool:
    """Whether kernels may use programmatic dependent launch (False inside programmatic_launch(False))."""
    return _STATE["pdl"]


def programmatic_launch(on: bool = True) -> AbstractContextManager[None]:
    """Allow or forbid programmatic dependent launch within the block (a captured CUDA graph keeps it)."""
    return _switched("pdl", on)


def prologues_allowed() -> bool:
    """Whether decode projections may apply RMSNorm / the SiLU gate to x themselves (see prologue.py)."""
    return _STATE["prologues"]


def fused_prologues(on: bool = True) -> AbstractContextManager[None]:
    """Allow or forbid norm and gate prologues inside the projections within the block (a captured graph keeps it)."""
    return _switched("prologues", on)
