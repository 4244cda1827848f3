"""Rotary position embedding (HF 'rotate half' layout) in one pass, fp32 math, on [B, T, H, D] inputs."""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None
    tl = None


def rope_reference(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, H, T, D] rotated by cos/sin [T, D], as trico.models.llama.apply_rope does it."""
    xf = x.float()
    half = xf.shape[-1] // 2
    rotated = torch.cat([-xf[..., half:], xf[..., :half]], dim=-1)
    return (xf * cos + rotated * sin).to(x.dtype)


if triton is not None:

    @triton.jit
    def _rope_kernel(x_ptr, cos_ptr, sin_ptr, y_ptr, H, T, stride_b, stride_t, HALF: tl.constexpr):
        row = tl.program_id(0)  # over B * T * H rows; x rows may be strided per token (fused QKV)
        tok = row // H
        t = tok % T
        xrow = x_ptr + (tok // T) * stride_b + t * stride_t + (row % H) * 2 * HALF
        offs = tl.arange(0, HALF)
        x1 = tl.load(xrow + offs).to(tl.float32)
        x2 = tl.load(xrow + HALF + offs).to(tl.float32)
        c1 = tl.load(cos_ptr + t * 2 * HALF + offs)
        c2 = tl.load(cos_ptr + t * 2 * HALF + HALF + offs)
        s1 = tl.load(sin_ptr + t * 2 * HALF + offs)
        s2 = tl.load(sin_ptr + t * 2 * HALF + HALF + offs)
        ty = y_ptr.dtype.element_ty
        tl.store(y_ptr + row * 2 * HALF + offs, (x1 * c1 - x2 * s1).to(ty))
        tl.store(y_ptr + row * 2 * HALF + HALF + offs, (x2 * c2 + x1 * s2).to(ty))


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """rope_reference on the projection's own layout: x [B, T, H, D] (heads dense, tokens may be
    strided, as in a slice of a fused QKV output), cos/sin fp32 [T, D]; returns a contiguous tensor."""
    assert triton is not None, "Triton is not installed"
    assert cos.is_contiguous() and sin.is_contiguous()
    assert cos.dtype == torch.float32 and sin.dtype == torch.float32, "cos/sin tables are fp32"
    b, t, h, d = x.shape
    assert x.stride(3) == 1 and x.stride(2) == d, "heads must be dense within a token"
    assert cos.shape == (t, d) and d % 2 == 0 and (d // 2) & (d // 2 - 1) == 0, (
        "head_dim/2 must be a power of 2"
    )
    y = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    _rope_kernel[(b * h * t,)](x, cos, sin, y, h, t, x.stride(0), x.stride(1), HALF=d // 2, num_warps=1)
    return y
