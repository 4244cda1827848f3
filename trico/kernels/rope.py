"""Rotary position embedding (HF 'rotate half' layout) in one pass, fp32 math, on [B, T, H, D] inputs.

`rope_qkv_store` is the decode-step form: from a fused QKV projection of one token it rotates the
query heads into a new tensor and writes the rotated key and the value straight into the KV
cache at the current position, one kernel instead of two rotations and two cache scatters.
"""

from __future__ import annotations

import torch

from trico.kernels.pdl import launch_kwargs, wait_for_producer

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


def rope_qkv_store_reference(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    pos: torch.Tensor,
    n_heads: int,
    n_kv_heads: int,
) -> torch.Tensor:
    """Torch form of `rope_qkv_store`: qkv [B, 1, (H + 2 Hkv) D]; caches [B, Hkv, L, D]; returns q [B, H, D]."""
    b = qkv.shape[0]
    d = cos.shape[-1]
    q, k, v = qkv.view(b, n_heads + 2 * n_kv_heads, d).split([n_heads, n_kv_heads, n_kv_heads], dim=1)
    q = rope_reference(q[:, :, None], cos, sin)[:, :, 0]
    k = rope_reference(k[:, :, None], cos, sin)
    k_cache.index_copy_(2, pos, k.to(k_cache.dtype))
    v_cache.index_copy_(2, pos, v[:, :, None].to(v_cache.dtype))
    return q


if triton is not None:

    @triton.jit
    def _rope_store_kernel(
        qkv_ptr,
        cos_ptr,
        sin_ptr,
        q_ptr,
        k_ptr,
        v_ptr,
        pos_ptr,
        NQ,
        NKV,
        stride_xb,
        stride_cb,
        stride_ch,
        stride_cl,
        HALF: tl.constexpr,
        PDL: tl.constexpr,
    ):
        wait_for_producer(PDL)
        b = tl.program_id(0)
        h = tl.program_id(1)  # query heads first, then key heads (each also moves its value head)
        offs = tl.arange(0, HALF)
        row = qkv_ptr + b * stride_xb + h * 2 * HALF
        x1 = tl.load(row + offs).to(tl.float32)
        x2 = tl.load(row + HALF + offs).to(tl.float32)
        c1 = tl.load(cos_ptr + offs)
        c2 = tl.load(cos_ptr + HALF + offs)
        s1 = tl.load(sin_ptr + offs)
        s2 = tl.load(sin_ptr + HALF + offs)
        y1 = x1 * c1 - x2 * s1
        y2 = x2 * c2 + x1 * s2
        if h < NQ:
            dst = q_ptr + (b * NQ + h) * 2 * HALF
        else:
            slot = b * stride_cb + (h - NQ) * stride_ch + tl.load(pos_ptr) * stride_cl
            dst = k_ptr + slot
            vrow = row + NKV * 2 * HALF
            vd = v_ptr + slot
            tl.store(vd + offs, tl.load(vrow + offs).to(v_ptr.dtype.element_ty))
            tl.store(vd + HALF + offs, tl.load(vrow + HALF + offs).to(v_ptr.dtype.element_ty))
        ty = dst.dtype.element_ty
        tl.store(dst + offs, y1.to(ty))
        tl.store(dst + HALF + offs, y2.to(ty))

    @triton.jit
    def _rope_kernel(
        x_ptr, cos_ptr, sin_ptr, y_ptr, H, T, stride_b, stride_t, HALF: tl.constexpr, BLOCK_H: tl.constexpr,
        PDL: tl.constexpr,
    ):  # fmt: skip
        # One program per token and BLOCK_H heads (one warp a row made 65536 tiny programs of a 2048-token
        # prompt: 80 us a call on the H200). x rows may be strided per token (a slice of a fused QKV).
        wait_for_producer(PDL)
        tok = tl.program_id(0)  # over B * T tokens
        heads = tl.program_id(1) * BLOCK_H + tl.arange(0, BLOCK_H)
        t = tok % T
        offs = tl.arange(0, HALF)
        mask = (heads < H)[:, None]
        xrow = x_ptr + (tok // T) * stride_b + t * stride_t + heads[:, None] * 2 * HALF + offs[None, :]
        x1 = tl.load(xrow, mask=mask, other=0.0).to(tl.float32)
        x2 = tl.load(xrow + HALF, mask=mask, other=0.0).to(tl.float32)
        c1 = tl.load(cos_ptr + t * 2 * HALF + offs)[None, :]
        c2 = tl.load(cos_ptr + t * 2 * HALF + HALF + offs)[None, :]
        s1 = tl.load(sin_ptr + t * 2 * HALF + offs)[None, :]
        s2 = tl.load(sin_ptr + t * 2 * HALF + HALF + offs)[None, :]
        ty = y_ptr.dtype.element_ty
        yrow = y_ptr + (tok * H + heads[:, None]) * 2 * HALF + offs[None, :]
        tl.store(yrow, (x1 * c1 - x2 * s1).to(ty), mask=mask)
        tl.store(yrow + HALF, (x2 * c2 + x1 * s2).to(ty), mask=mask)


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
    block_h = min(triton.next_power_of_2(h), max(1, 4096 // d))  # up to 4096 values a program
    _rope_kernel[(b * t, triton.cdiv(h, block_h))](
        x, cos, sin, y, h, t, x.stride(0), x.stride(1), HALF=d // 2, BLOCK_H=block_h,
        num_warps=4 if block_h * d >= 2048 else 1, **launch_kwargs(x),
    )  # fmt: skip
    return y


def check_decode_qkv(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    pos: torch.Tensor,
    n_heads: int,
    n_kv_heads: int,
) -> tuple[int, int]:
    """The layout contract of a decode token's fused QKV output and its layer's cache; returns (B, D)."""
    b, t, width = qkv.shape
    d = cos.shape[-1]
    assert t == 1 and width == (n_heads + 2 * n_kv_heads) * d and qkv.is_contiguous(), (
        "qkv must be [B, 1, (H+2Hkv)D]"
    )
    assert cos.shape == (1, d) and sin.shape == (1, d), "cos/sin are the [1, D] rows of this position"
    assert cos.dtype == torch.float32 and sin.dtype == torch.float32, "cos/sin tables are fp32"
    assert cos.is_contiguous() and sin.is_contiguous()
    assert d % 2 == 0 and (d // 2) & (d // 2 - 1) == 0, "head_dim/2 must be a power of 2"
    assert k_cache.shape[:2] == (b, n_kv_heads) and k_cache.shape[3] == d and v_cache.shape == k_cache.shape
    assert k_cache.stride() == v_cache.stride() and k_cache.stride(3) == 1, "caches must be dense in D"
    assert pos.numel() == 1, "pos is the single current position"
    return b, d


def rope_qkv_store(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    pos: torch.Tensor,
    n_heads: int,
    n_kv_heads: int,
) -> torch.Tensor:
    """One decode token: rotate q and k of a fused QKV output, store k and v at `pos` (device tensor).

    qkv [B, 1, (H + 2 Hkv) D] contiguous; cos/sin fp32 [1, D]; k_cache/v_cache [B, Hkv, L, D] (one
    layer of a static cache, dense in D, same strides); returns the rotated queries [B, H, D].
    """
    assert triton is not None, "Triton is not installed"
    b, d = check_decode_qkv(qkv, cos, sin, k_cache, v_cache, pos, n_heads, n_kv_heads)
    q = torch.empty(b, n_heads, d, dtype=qkv.dtype, device=qkv.device)
    _rope_store_kernel[(b, n_heads + n_kv_heads)](
        qkv,
        cos,
        sin,
        q,
        k_cache,
        v_cache,
        pos,
        n_heads,
        n_kv_heads,
        qkv.stride(0),
        k_cache.stride(0),
        k_cache.stride(1),
        k_cache.stride(2),
        HALF=d // 2,
        num_warps=1,
        **launch_kwargs(qkv),
    )
    return q
