"""A grid-wide barrier for persistent kernels: every program waits until all of the grid has arrived.

Only correct when every program of the grid is resident at once (the launcher sizes the grid from
the compiled kernel's registers and the SM count; `resident_programs`). Under the Triton interpreter
programs run one after another, so a grid there must be one program.

The counter pair lives in a persistent int32 buffer: programs add 1 to the first on arrival and spin
on an acquiring load until it reaches the grid size; `grid_exit`, called once by every program after
its last barrier, counts exits in the second, and the last program to leave zeroes both, so the next
launch (the same kernel in the next layer, stream-ordered after this one) starts from zero.
"""

from __future__ import annotations

import functools
import math

import torch

from trico.kernels.qlinear import triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def grid_barrier(bar_ptr, programs):
        """Return once all `programs` programs have called this; their earlier global writes are visible then."""
        tl.debug_barrier()  # every thread's writes are issued before the program announces itself
        tl.atomic_add(bar_ptr, 1, sem="release", scope="gpu")
        seen = tl.atomic_add(bar_ptr, 0, sem="acquire", scope="gpu")
        while seen < programs:
            seen = tl.atomic_add(bar_ptr, 0, sem="acquire", scope="gpu")
        tl.debug_barrier()

    @triton.jit
    def grid_exit(bar_ptr, programs):
        """Count this program out; the last one to leave puts the barrier back to zero."""
        left = tl.atomic_add(bar_ptr + 1, 1, sem="acq_rel", scope="gpu")
        if left == programs - 1:
            tl.atomic_xchg(bar_ptr, 0)
            tl.atomic_xchg(bar_ptr + 1, 0)


_BARRIERS: dict[torch.device, torch.Tensor] = {}


def barrier_buffer(device: torch.device) -> torch.Tensor:
    """The zeroed int32 counter pair of `grid_barrier` on a device (kernels leave it zeroed)."""
    buf = _BARRIERS.get(device)
    if buf is None:
        buf = _BARRIERS[device] = torch.zeros(2, dtype=torch.int32, device=device)
    return buf


REGISTERS_PER_SM = 65536
SHARED_PER_SM = 228 * 1024
"""Hopper's register file and shared memory per SM (sm_90; 1 KiB of the latter is reserved per block)."""


def programs_per_sm(registers: int, shared: int, num_warps: int) -> int:
    """Blocks of a kernel one SM holds at once, from its registers per thread and shared memory per block."""
    per_warp = math.ceil(registers * 32 / 256) * 256  # registers are allocated per warp in 256s
    by_registers = (REGISTERS_PER_SM // per_warp) // num_warps
    by_shared = SHARED_PER_SM // (shared + 1024)
    by_threads = 2048 // (32 * num_warps)
    return max(0, min(by_registers, by_shared, by_threads, 32))


@functools.cache
def sm_count(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device."""
    return torch.cuda.get_device_properties(device).multi_processor_count


def resident_programs(compiled, device: torch.device, num_warps: int) -> int:  # noqa: ANN001 - CompiledKernel
    """How many programs of a compiled kernel the whole device holds at once."""
    compiled._init_handles()  # loads the module: n_regs is known from then on
    return programs_per_sm(compiled.n_regs, compiled.metadata.shared, num_warps) * sm_count(device)
