"""Decode attention (one new query per sequence) over a static KV cache, flash-decoding style.

The valid prefix 0..pos is read from a device tensor, so the launch shape never depends on the
current length and the call can live inside a CUDA graph. The prefix is cut into NSPLIT chunks
(sized at run time from pos) that separate programs reduce in parallel; a second kernel merges
the partial softmaxes. One program handles every query head of a key/value head (GQA), so each
cached key and value is read once. Keys and values are bf16/fp16, or int8 with one fp16 scale per
(batch, kv head, position) (the KV-cache INT8 contract).
"""

from __future__ import annotations

import math

import torch

from trico.kernels.gemv_a8 import QuantizedX
from trico.kernels.pdl import launch_kwargs, wait_for_producer
from trico.kernels.qlinear import INTERPRET

try:
    import triton
    import triton.language as tl
except ImportError:
    triton = None
    tl = None

if triton is not None:
    from trico.kernels.gemv_a8 import a8_quantize_store, a8_source


def decode_attention_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pos: int,
    k_scale: torch.Tensor | None = None,
    v_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention of q [B, H, D] over keys/values [B, Hkv, L, D] at positions 0..pos; fp32 math."""
    kf, vf = k[:, :, : pos + 1].float(), v[:, :, : pos + 1].float()
    if k_scale is not None:
        kf = kf * k_scale[:, :, : pos + 1, None].float()
        vf = vf * v_scale[:, :, : pos + 1, None].float()
    rep = q.shape[1] // k.shape[1]
    kf, vf = kf.repeat_interleave(rep, dim=1), vf.repeat_interleave(rep, dim=1)
    s = torch.einsum("bhd,bhld->bhl", q.float(), kf) / math.sqrt(q.shape[-1])
    return torch.einsum("bhl,bhld->bhd", s.softmax(-1), vf).to(q.dtype)


if triton is not None:

    @triton.jit
    def _split_kernel(
        q_ptr,
        k_ptr,
        v_ptr,
        ks_ptr,
        vs_ptr,
        pos_ptr,
        o_ptr,
        lse_ptr,
        HKV,
        stride_qb,
        stride_qh,
        stride_kb,
        stride_kh,
        stride_kl,
        stride_sb,
        stride_sh,
        sm_scale,
        NSPLIT: tl.constexpr,
        REP: tl.constexpr,
        REP_PAD: tl.constexpr,
        D: tl.constexpr,
        BLOCK_L: tl.constexpr,
        QUANT: tl.constexpr,
        DOT_F32: tl.constexpr,
        PDL: tl.constexpr,
    ):
        wait_for_producer(PDL)
        bh = tl.program_id(0)
        split = tl.program_id(1)
        b = bh // HKV
        hk = bh % HKV
        n_valid = tl.load(pos_ptr).to(tl.int32) + 1
        chunk = tl.cdiv(tl.cdiv(n_valid, NSPLIT), BLOCK_L) * BLOCK_L
        start = split * chunk
        end = tl.minimum(start + chunk, n_valid)
        offs_r = tl.arange(0, REP_PAD)
        offs_d = tl.arange(0, D)
        rmask = offs_r < REP
        heads = hk * REP + offs_r
        q = tl.load(
            q_ptr + b * stride_qb + heads[:, None] * stride_qh + offs_d[None, :],
            mask=rmask[:, None],
            other=0.0,
        )
        if DOT_F32:
            q = q.to(tl.float32)
        m_i = tl.full([REP_PAD], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([REP_PAD], dtype=tl.float32)
        acc = tl.zeros([REP_PAD, D], dtype=tl.float32)
        kbase = b * stride_kb + hk * stride_kh
        for l0 in range(start, end, BLOCK_L):
            offs_l = l0 + tl.arange(0, BLOCK_L)
            lmask = offs_l < end
            kv_off = kbase + offs_l[:, None] * stride_kl + offs_d[None, :]
            kt = tl.load(k_ptr + kv_off, mask=lmask[:, None], other=0.0)
            vt = tl.load(v_ptr + kv_off, mask=lmask[:, None], other=0.0)
            if QUANT:
                soff = b * stride_sb + hk * stride_sh + offs_l
                ksc = tl.load(ks_ptr + soff, mask=lmask, other=0.0).to(tl.float32)
                vsc = tl.load(vs_ptr + soff, mask=lmask, other=0.0).to(tl.float32)
                kt = (kt.to(tl.float32) * ksc[:, None]).to(q.dtype)
                vt = (vt.to(tl.float32) * vsc[:, None]).to(q.dtype)
            elif DOT_F32:
                kt = kt.to(tl.float32)
                vt = vt.to(tl.float32)
            s = tl.dot(q, tl.trans(kt)) * sm_scale
            s = tl.where(lmask[None, :], s, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(s, axis=1))
            alpha = tl.exp(m_i - m_new)
            p = tl.exp(s - m_new[:, None])
            l_i = l_i * alpha + tl.sum(p, axis=1)
            acc = acc * alpha[:, None] + tl.dot(p.to(vt.dtype), vt)
            m_i = m_new
        has = l_i > 0
        out = acc / tl.where(has, l_i, 1.0)[:, None]
        lse = tl.where(has, m_i + tl.log(tl.where(has, l_i, 1.0)), float("-inf"))
        row = (b * HKV * REP + heads) * NSPLIT + split
        tl.store(o_ptr + row[:, None] * D + offs_d[None, :], out, mask=rmask[:, None])
        tl.store(lse_ptr + row, lse, mask=rmask)

    @triton.jit
    def _combine_kernel(
        o_ptr,
        lse_ptr,
        out_ptr,
        q_ptr,
        s_ptr,
        H,
        stride_ob,
        stride_oh,
        NSPLIT: tl.constexpr,
        D: tl.constexpr,
        A8_QB: tl.constexpr,
        A8_CPW: tl.constexpr,
        PDL: tl.constexpr,
    ):
        wait_for_producer(PDL)
        bh = tl.program_id(0)
        offs_s = tl.arange(0, NSPLIT)
        slots = tl.arange(0, D)
        if A8_QB > 0:  # each lane combines the channel its int8 GEMV byte slot needs (see rmsnorm.py)
            offs_d = a8_source(slots, A8_CPW)
        else:
            offs_d = slots
        lse = tl.load(lse_ptr + bh * NSPLIT + offs_s)
        m = tl.max(lse, axis=0)
        w = tl.exp(lse - m)  # splits without keys have lse = -inf, weight 0
        o = tl.load(o_ptr + (bh * NSPLIT + offs_s)[:, None] * D + offs_d[None, :])
        res = (tl.sum(o * w[:, None], axis=0) / tl.sum(w, axis=0)).to(out_ptr.dtype.element_ty)
        b = bh // H
        h = bh % H
        tl.store(out_ptr + b * stride_ob + h * stride_oh + offs_d, res)
        if A8_QB > 0:  # heads are whole activation blocks: the GEMV row of batch b is its H * D values
            every = tl.full([D], 1, tl.int1)
            a8_quantize_store(res, b * H * D + h * D + slots, every, q_ptr, s_ptr, D, A8_QB)


def num_splits(batch: int, kv_heads: int, max_len: int, block_l: int = 64, n_sm: int = 132) -> int:
    """Splits of the prefix: enough programs for two waves over the SMs, a power of two, <= chunks."""
    want = max(1, -(-2 * n_sm // (batch * kv_heads)))
    chunks = max(1, -(-max_len // block_l))
    s = 1
    while s * 2 <= min(want, chunks, 64):
        s *= 2
    return s


def decode_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    pos: torch.Tensor,
    k_scale: torch.Tensor | None = None,
    v_scale: torch.Tensor | None = None,
    block_l: int = 64,
    quantized_out: QuantizedX | None = None,
) -> torch.Tensor:
    """Attention of q [B, H, D] over k, v [B, Hkv, L, D] at positions 0..pos (pos: 1-element device tensor).

    `quantized_out` (from `new_quantized_x`, [B, H * D]) also receives the output quantized for the
    int8-activation GEMV of the output projection.
    """
    assert triton is not None, "Triton is not installed"
    bsz, h, d = q.shape
    _, hkv, max_len, dk = k.shape
    assert dk == d and v.shape == k.shape and h % hkv == 0, "q/k/v shapes disagree"
    assert k.stride() == v.stride() and k.stride(-1) == 1 and q.stride(-1) == 1, "k/v must be dense in D"
    assert d & (d - 1) == 0 and d >= 16, f"head_dim must be a power of two >= 16, got {d}"
    assert pos.numel() == 1, "pos is the single current position"
    quant = k.dtype == torch.int8
    if quant:
        assert k_scale is not None and v_scale is not None and k_scale.shape == k.shape[:3]
        assert k_scale.stride() == v_scale.stride() and k_scale.stride(-1) == 1
    rep = h // hkv
    nsplit = num_splits(bsz, hkv, max_len, block_l)
    o_part = torch.empty(bsz * h * nsplit, d, dtype=torch.float32, device=q.device)
    lse = torch.empty(bsz * h * nsplit, dtype=torch.float32, device=q.device)
    out = torch.empty(bsz, h, d, dtype=q.dtype, device=q.device)
    ks = k_scale if quant else k
    vs = v_scale if quant else v
    _split_kernel[(bsz * hkv, nsplit)](
        q,
        k,
        v,
        ks,
        vs,
        pos,
        o_part,
        lse,
        hkv,
        q.stride(0),
        q.stride(1),
        k.stride(0),
        k.stride(1),
        k.stride(2),
        ks.stride(0) if quant else 0,
        ks.stride(1) if quant else 0,
        1.0 / math.sqrt(d),
        NSPLIT=nsplit,
        REP=rep,
        REP_PAD=max(16, triton.next_power_of_2(rep)),
        D=d,
        BLOCK_L=block_l,
        QUANT=quant,
        DOT_F32=INTERPRET,
        num_warps=4,
        num_stages=3,
        **launch_kwargs(q),
    )
    a8 = quantized_out
    if a8 is not None:
        assert a8.q.shape == (bsz, h * d) and d % a8.qb == 0, f"quantized_out must be [{bsz}, {h * d}]"
    _combine_kernel[(bsz * h,)](
        o_part,
        lse,
        out,
        a8.q if a8 is not None else out,
        a8.s if a8 is not None else out,
        h,
        out.stride(0),
        out.stride(1),
        NSPLIT=nsplit,
        D=d,
        A8_QB=a8.qb if a8 is not None else 0,
        A8_CPW=32 // a8.bits if a8 is not None else 4,
        **launch_kwargs(q),
    )
    return out
