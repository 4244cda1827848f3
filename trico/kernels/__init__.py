"""trico.kernels: Triton kernels, each file = kernel + launcher + plain-torch reference.

`torch_reference()` switches the CUDA fast paths (QLinear dispatch, decode attention) off for a
block of code, so the GPU can run the exact torch reference path for A/B correctness checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

_STATE = {"enabled": True}


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
