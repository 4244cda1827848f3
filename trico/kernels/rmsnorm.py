"""Fused RMSNorm, optionally with the residual add before it: h = x + r; y = w * norm(h).

Rounding follows the torch module exactly (normalize in fp32, round to the activation dtype,
multiply by the weight and round again), so the Triton and reference paths agree bit for bit.
"""

from __future__ import annotations

import torch

from trico.kernels.gemv_a8 import QuantizedX
from trico.kernels.pdl import launch_kwargs, wait_for_producer
from trico.kernels.w8a8 import RowCodes

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None
    tl = None

if triton is not None:
    from trico.kernels.gemv_a8 import a8_quantize_store, a8_source
    from trico.kernels.w8a8 import quantize_row_store


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
        sm_ptr,
        HAS_RES: tl.constexpr,
        BLOCK_D: tl.constexpr,
        A8_QB: tl.constexpr,
        A8_CPW: tl.constexpr,
        W8A8: tl.constexpr,
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
        if W8A8:  # the whole row is here: its per-row codes for the w8a8 GEMM need no launch of their own
            quantize_row_store(y.to(tl.float32), offs, mask, sm_ptr, q_ptr + row * D, s_ptr + row)


def rmsnorm(
    x: torch.Tensor,
    weight: torch.Tensor,
    eps: float,
    residual: torch.Tensor | None = None,
    quantized_out: QuantizedX | RowCodes | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton version of rmsnorm_reference; returns (y, h) with h = x + residual (x itself without one).

    `quantized_out` also receives y quantized: for the int8-activation GEMV (a `new_quantized_x`) or per
    row for a w8a8 layer (a `new_row_codes`).
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
    w8 = quantized_out if isinstance(quantized_out, RowCodes) else None
    a8 = quantized_out if w8 is None else None
    if a8 is not None:
        assert a8.q.shape == (rows, d) and d % a8.qb == 0, f"quantized_out must be [{rows}, {d}]"
    if w8 is not None:
        assert w8.q.shape == (rows, d) and w8.s.shape == (rows,), f"quantized_out must be [{rows}, {d}]"
    codes = a8 or w8
    _rmsnorm_kernel[(rows,)](
        x,
        residual if residual is not None else x,
        weight,
        y,
        h,
        d,
        eps,
        codes.q if codes is not None else y,
        codes.s if codes is not None else y,
        w8.smooth if w8 is not None else y,
        HAS_RES=residual is not None,
        BLOCK_D=max(triton.next_power_of_2(d), a8.qb if a8 is not None else 1),
        A8_QB=a8.qb if a8 is not None else 0,
        A8_CPW=32 // a8.bits if a8 is not None else 4,
        W8A8=w8 is not None,
        num_warps=4 if d <= 4096 else 8,
        **launch_kwargs(x),
    )
    return y, h
