"""SiLU-gated product silu(g) * u in one pass, rounded like the torch expression."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trico.kernels.gemv_a8 import QuantizedX
from trico.kernels.pdl import launch_kwargs, wait_for_producer

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None
    tl = None

if triton is not None:
    from trico.kernels.gemv_a8 import a8_quantize_store, a8_source
    from trico.kernels.silu_gate import silu_times


def silu_mul_reference(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """F.silu(g) * u, as trico.models.llama.MLP computes it."""
    return F.silu(g) * u


if triton is not None:

    @triton.jit
    def _silu_mul_kernel(g_ptr, u_ptr, y_ptr, n, BLOCK: tl.constexpr, PDL: tl.constexpr):
        wait_for_producer(PDL)
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        g = tl.load(g_ptr + offs, mask=mask, other=0.0)
        u = tl.load(u_ptr + offs, mask=mask, other=0.0)
        tl.store(y_ptr + offs, silu_times(g, u, g.dtype), mask=mask)

    @triton.jit
    def _silu_mul_packed_kernel(
        gu_ptr,
        y_ptr,
        q_ptr,
        s_ptr,
        H,
        BLOCK: tl.constexpr,
        A8_QB: tl.constexpr,
        A8_CPW: tl.constexpr,
        PDL: tl.constexpr,
    ):
        wait_for_producer(PDL)
        row = tl.program_id(0)
        slots = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = slots < H
        if A8_QB > 0:  # each lane computes the value its int8 GEMV byte slot needs (see rmsnorm.py)
            offs = a8_source(slots, A8_CPW)
        else:
            offs = slots
        g = tl.load(gu_ptr + row * 2 * H + offs, mask=mask, other=0.0)
        u = tl.load(gu_ptr + row * 2 * H + H + offs, mask=mask, other=0.0)
        y = silu_times(g, u, g.dtype)
        tl.store(y_ptr + row * H + offs, y, mask=mask)
        if A8_QB > 0:
            a8_quantize_store(y, slots, mask, q_ptr + row * H, s_ptr + row * (H // A8_QB), BLOCK, A8_QB)


def silu_mul_packed(gu: torch.Tensor, quantized_out: QuantizedX | None = None) -> torch.Tensor:
    """silu(gu[..., :H]) * gu[..., H:] for the output of a fused gate/up projection [..., 2H].

    `quantized_out` (from `new_quantized_x`) also receives the result quantized for the int8-activation GEMV.
    """
    assert triton is not None, "Triton is not installed"
    assert gu.is_contiguous() and gu.shape[-1] % 2 == 0
    h = gu.shape[-1] // 2
    rows = gu.numel() // (2 * h)
    y = torch.empty(*gu.shape[:-1], h, dtype=gu.dtype, device=gu.device)
    block = 1024
    a8 = quantized_out
    if a8 is not None:
        assert a8.q.shape == (rows, h) and block % a8.qb == 0, f"quantized_out must be [{rows}, {h}]"
    _silu_mul_packed_kernel[(rows, triton.cdiv(h, block))](
        gu,
        y,
        a8.q if a8 is not None else y,
        a8.s if a8 is not None else y,
        h,
        BLOCK=block,
        A8_QB=a8.qb if a8 is not None else 0,
        A8_CPW=32 // a8.bits if a8 is not None else 4,
        num_warps=4,
        **launch_kwargs(gu),
    )
    return y


def silu_mul(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Triton version of silu_mul_reference (same shape, contiguous)."""
    assert triton is not None, "Triton is not installed"
    assert g.shape == u.shape and g.dtype == u.dtype and g.is_contiguous() and u.is_contiguous()
    y = torch.empty_like(g)
    n = g.numel()
    block = 1024
    _silu_mul_kernel[(triton.cdiv(n, block),)](g, u, y, n, BLOCK=block, num_warps=4, **launch_kwargs(g))
    return y
