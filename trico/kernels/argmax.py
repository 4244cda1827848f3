"""Greedy sampling on the device: the index of each row's largest logit, one program per row.

torch's `argmax` over one fp32 row of a Llama vocabulary is one generic reduction launch that took
12.6 us of a ~1.85 ms INT4 decode step on the H200 (benchmarks/results/profile-half2-b1-h200.json);
here one program reads the row in wide chunks and keeps a running maximum. Ties go to the first
index and NaN counts as the largest value, as in `torch.argmax`, so greedy decoding picks the same
token on both paths.
"""

from __future__ import annotations

import torch

from trico.kernels import fused_path
from trico.kernels.pdl import launch_kwargs, wait_for_producer

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None

KERNEL = True
"""Whether `greedy_tokens` may take the kernel (False: torch.argmax everywhere, for same-run A/B timing)."""

CHUNK = 8192
"""Logits one program reads per step (32 per thread with eight warps)."""

if triton is not None:

    @triton.jit
    def _argmax_kernel(x_ptr, out_ptr, V, stride_row, BLOCK: tl.constexpr, PDL: tl.constexpr):
        wait_for_producer(PDL)
        row = tl.program_id(0)
        base = x_ptr + row.to(tl.int64) * stride_row
        best = -float("inf")
        best_i = 0
        first_nan = V
        for c0 in range(0, V, BLOCK):
            offs = c0 + tl.arange(0, BLOCK)
            raw = tl.load(base + offs, mask=offs < V, other=-float("inf")).to(tl.float32)
            nan = raw != raw
            v = tl.where(nan, -float("inf"), raw)
            m, i = tl.max(v, axis=0, return_indices=True, return_indices_tie_break_left=True)
            take = m > best  # strictly: on a tie the earlier chunk keeps it
            best_i = tl.where(take, c0 + i, best_i)
            best = tl.where(take, m, best)
            first_nan = tl.minimum(first_nan, tl.min(tl.where(nan, offs, V), axis=0))
        best_i = tl.where(first_nan < V, first_nan, best_i)
        tl.store(out_ptr + row, best_i.to(tl.int64))


def argmax_reference(logits: torch.Tensor) -> torch.Tensor:
    """torch.argmax over the last dimension."""
    return logits.argmax(dim=-1)


def argmax_rows(logits: torch.Tensor) -> torch.Tensor:
    """Index of the largest value of each row of logits [B, V] (first on ties, NaN largest), int64 [B]."""
    assert triton is not None, "Triton is not installed"
    assert logits.dim() == 2 and logits.stride(1) == 1, "logits must be [B, V] with dense rows"
    out = torch.empty(logits.shape[0], dtype=torch.int64, device=logits.device)
    block = min(CHUNK, triton.next_power_of_2(logits.shape[1]))
    _argmax_kernel[(logits.shape[0],)](
        logits, out, logits.shape[1], logits.stride(0), BLOCK=block, num_warps=8, **launch_kwargs(logits)
    )
    return out


def greedy_tokens(logits: torch.Tensor) -> torch.Tensor:
    """argmax over the last dimension: the kernel on the fused path for 2-D logits, torch elsewhere."""
    if (
        not KERNEL
        or triton is None
        or logits.dim() != 2
        or logits.stride(1) != 1
        or not fused_path(logits)
        or logits.shape[1] == 0
    ):
        return argmax_reference(logits)
    return argmax_rows(logits)
