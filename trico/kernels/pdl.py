"""Programmatic dependent launch (PDL, Hopper and later): the next decode kernel starts while this one drains.

A batch-1 decode step is ~460 small kernels; profiles on the H200 (benchmarks/profile_decode.py)
show 1-2 us per kernel spent in launch, ramp-up and tail, a fifth of an INT4 step. With PDL a
kernel's grid may be scheduled before the previous kernel finishes: its programs start, wait in
`griddepcontrol.wait` until the previous grid has completed and its writes are visible, and only
then touch activations. CUDA-graph capture keeps these launches as programmatic edges.

Contract for every kernel launched with `launch_kwargs`: call `wait_for_producer(PDL)` before the
first load of anything the kernel launched just before it may write and before the first store.
With `EARLY_TRIGGER` each program signals its dependents right after the wait, so at most two grids
overlap and every kernel still sees all earlier ones complete; without it no program signals, so the
next grid is scheduled as this one's programs exit (an A/B knob: benchmarks/profile_decode.py --pdl
on,late,off). Before the wait a kernel reads only constants (weights, norm weights); what other
kernels wrote it may use there only as a hint that decides no result (the split attention kernel reads
the position from L2 to pick the cache lines it prefetches). With the position and the rotary tables
read before the wait for real use (commits e85deaa-873071a) the SmolLM2 check's bf16 Triton path came
out with different logits (docs/gpu-engine-history.md); we suspect stale L1 lines, since only the wait is
documented to make earlier grids' writes visible, and went back to reading them after it.
"""

from __future__ import annotations

import functools
import os

import torch

from trico.kernels import pdl_allowed

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None

INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"

if triton is not None:
    try:
        from triton.language.extra.cuda import gdc_launch_dependents, gdc_wait
    except ImportError:  # Triton < 3.4: no grid dependency control
        gdc_wait = gdc_launch_dependents = None

    if gdc_wait is not None:

        @triton.jit
        def wait_for_producer(PDL: tl.constexpr):
            """Block until the previous kernel's writes are visible; with PDL == 1 let the next kernel launch now."""
            if PDL:
                gdc_wait()
                if PDL == 1:
                    gdc_launch_dependents()

    else:

        @triton.jit
        def wait_for_producer(PDL: tl.constexpr):
            """No grid dependency control in this Triton: launches are plain stream-ordered ones."""
            pass

else:  # no Triton: the kernel modules still import (their kernels are never defined), the torch path runs
    gdc_wait = gdc_launch_dependents = wait_for_producer = None


EARLY_TRIGGER = True
"""Signal dependents right after the wait (PDL == 1) rather than implicitly at exit (PDL == 2)."""


@functools.cache
def _launcher_has_pdl() -> bool:
    """Whether this Triton's CUDA launcher takes the `launch_pdl` option."""
    try:
        import dataclasses

        from triton.backends.nvidia.compiler import CUDAOptions

        return "launch_pdl" in {f.name for f in dataclasses.fields(CUDAOptions)}
    except (ImportError, TypeError):
        return False


@functools.cache
def _hopper_or_later(index: int) -> bool:
    """Whether CUDA device `index` has grid dependency control (compute capability 9.0+)."""
    return torch.cuda.get_device_capability(index)[0] >= 9


def pdl_on(t: torch.Tensor) -> bool:
    """Whether kernels working on t launch with PDL: CUDA on Hopper+, Triton with gdc, not disabled."""
    return (
        triton is not None
        and not INTERPRET
        and gdc_wait is not None
        and t.is_cuda
        and _launcher_has_pdl()
        and pdl_allowed()
        and _hopper_or_later(t.device.index if t.device.index is not None else torch.cuda.current_device())
    )


def launch_kwargs(t: torch.Tensor) -> dict[str, int | bool]:
    """The `PDL` constexpr (0 off, 1 early trigger, 2 trigger at exit) and the `launch_pdl` option for a kernel on t."""
    on = pdl_on(t)
    return {"PDL": (1 if EARLY_TRIGGER else 2) if on else 0, "launch_pdl": on}
