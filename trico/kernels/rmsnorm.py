"""Fused RMSNorm, optionally with the residual add before it: h = x + r; y = w * norm(h).

Rounding follows the torch module exactly (normalize in fp32, round to the activation dtype,
multiply by the weight and round again), so the Triton and reference paths agree bit for bit.
"""

from __future__ import annotations

import torch

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


def rmsnorm_reference(
    x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, h): h = x + residual (or x), y = weight * rmsnorm(h), as trico.models.llama.RMSNorm does it."""
    h = x if residual is None else x + residual
    hf = h.float()
    n = (hf * torch.rsqrt(hf.pow(2).mean(-1, keepdim=True) + eps)).to(h.dtype)
    return weight * n, h


if triton is not None:

    @triton.jit
    def _rmsnorm_kernel(
        x_ptr,
        r_ptr,
        w_ptr,
        y_ptr,
        h_ptr,
        D,
        eps,
        q_ptr,
        s_ptr,
        HAS_RES: tl.constexpr,
        BLOCK_D: tl.constexpr,
        A8_QB: tl.constexpr,
        A8_CPW: tl.constexpr,
        PDL: tl.constexpr,
    ):
        row = tl.program_id(0)
        slots = tl.arange(0, BLOCK_D)
        mask = slots < D
        # With int8 output every lane works on the x value its GEMV byte slot needs (a permutation
        # within each word's codes), so the codes come out of registers in the GEMV's order.
        if A8_QB > 0:
            offs = a8_source(slots, A8_CPW)
        else:
            offs = slots
        w = tl.load(w_ptr + offs, mask=mask, other=0.0)  # a constant: read before the wait (PDL)
        wait_for_producer(PDL)
        x = tl.load(x_ptr + row * D + offs, mask=mask, other=0.0)
        if HAS_RES:
            r = tl.load(r_ptr + row * D + offs, mask=mask, other=0.0)
            x = (x.to(tl.float32) + r.to(tl.float32)).to(x.dtype)  # torch rounds the bf16 sum once too
            tl.store(h_ptr + row * D + offs, x, mask=mask)
        xf = x.to(tl.float32)
        rstd = 1.0 / tl.sqrt(tl.sum(xf * xf, axis=0) / D + eps)
        n = (xf * rstd).to(x.dtype)
        y = (n.to(tl.float32) * w.to(tl.float32)).to(y_ptr.dtype.element_ty)
        tl.store(y_ptr + row * D + offs, y, mask=mask)
        if A8_QB > 0:
            a8_quantize_store(y, slots, mask, q_ptr + row * D, s_ptr + row * (D // A8_QB), BLOCK_D, A8_QB)


def rmsnorm(
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float,
    residual: torch.Tensor | None = None,
    quantized_out: QuantizedX | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton version of rmsnorm_reference; returns (y, h) with h = x + residual (x itself without one).

    `quantized_out` (from `new_quantized_x`) also receives y quantized for the int8-activation GEMV.
    """
    assert triton is not None, "Triton is not installed"
    assert x.is_contiguous() and weight.is_contiguous(), "x and weight must be contiguous"
    assert weight.shape == x.shape[-1:], "weight must match the last dim"
    assert residual is None or (residual.shape == x.shape and residual.is_contiguous())
    d = x.shape[-1]
    rows = x.numel() // d
    out_dtype = torch.promote_types(x.dtype, weight.dtype)
    y = torch.empty(x.shape, dtype=out_dtype, device=x.device)
    h = torch.empty_like(x) if residual is not None else x
    a8 = quantized_out
    if a8 is not None:
        assert a8.q.shape == (rows, d) and d % a8.qb == 0, f"quantized_out must be [{rows}, {d}]"
    _rmsnorm_kernel[(rows,)](
        x,
        residual if residual is not None else x,
        weight,
        y,
        h,
        d,
        eps,
        a8.q if a8 is not None else y,
        a8.s if a8 is not None else y,
        HAS_RES=residual is not None,
        BLOCK_D=max(triton.next_power_of_2(d), a8.qb if a8 is not None else 1),
        A8_QB=a8.qb if a8 is not None else 0,
        A8_CPW=32 // a8.bits if a8 is not None else 4,
        num_warps=4 if d <= 4096 else 8,
        **launch_kwargs(x),
    )
    return y, h
