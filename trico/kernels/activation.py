"""SiLU-gated product silu(g) * u in one pass, rounded like the torch expression."""

from __future__ import annotations

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None
    tl = None


def silu_mul_reference(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """F.silu(g) * u, as trico.models.llama.MLP computes it."""
    return F.silu(g) * u


if triton is not None:

    @triton.jit
    def _silu_mul_kernel(g_ptr, u_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < n
        g = tl.load(g_ptr + offs, mask=mask, other=0.0)
        u = tl.load(u_ptr + offs, mask=mask, other=0.0)
        gf = g.to(tl.float32)
        s = (gf / (1.0 + tl.exp(-gf))).to(g.dtype)  # torch rounds silu to the dtype before the product
        tl.store(y_ptr + offs, (s.to(tl.float32) * u.to(tl.float32)).to(g.dtype), mask=mask)

    @triton.jit
    def _silu_mul_packed_kernel(gu_ptr, y_ptr, H, BLOCK: tl.constexpr):
        row = tl.program_id(0)
        offs = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = offs < H
        g = tl.load(gu_ptr + row * 2 * H + offs, mask=mask, other=0.0)
        u = tl.load(gu_ptr + row * 2 * H + H + offs, mask=mask, other=0.0)
        gf = g.to(tl.float32)
        s = (gf / (1.0 + tl.exp(-gf))).to(g.dtype)
        tl.store(y_ptr + row * H + offs, (s.to(tl.float32) * u.to(tl.float32)).to(g.dtype), mask=mask)


def silu_mul_packed(gu: torch.Tensor) -> torch.Tensor:
    """silu(gu[..., :H]) * gu[..., H:] for the output of a fused gate/up projection [..., 2H]."""
    assert triton is not None, "Triton is not installed"
    assert gu.is_contiguous() and gu.shape[-1] % 2 == 0
    h = gu.shape[-1] // 2
    rows = gu.numel() // (2 * h)
    y = torch.empty(*gu.shape[:-1], h, dtype=gu.dtype, device=gu.device)
    block = 1024
    _silu_mul_packed_kernel[(rows, triton.cdiv(h, block))](gu, y, h, BLOCK=block, num_warps=4)
    return y


def silu_mul(g: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Triton version of silu_mul_reference (same shape, contiguous)."""
    assert triton is not None, "Triton is not installed"
    assert g.shape == u.shape and g.dtype == u.dtype and g.is_contiguous() and u.is_contiguous()
    y = torch.empty_like(g)
    n = g.numel()
    block = 1024
    _silu_mul_kernel[(triton.cdiv(n, block),)](g, u, y, n, BLOCK=block, num_warps=4)
    return y
