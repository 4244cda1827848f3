"""Decode attention (one new query per sequence) over a static KV cache, flash-decoding style.

The valid prefix 0..pos is read from a device tensor, so the launch shape never depends on the
current length and the call can live inside a CUDA graph. The prefix is cut into NSPLIT chunks
(sized at run time from pos) that separate programs reduce in parallel; a second kernel merges
the partial softmaxes. One program handles every query head of a key/value head (GQA), so each
cached key and value is read once. Keys and values are bf16/fp16, or int8 with one fp16 scale per
(batch, kv head, position) (the KV-cache INT8 contract).

`rope_decode_attention` is the whole attention step of a decode token in one launch, for the
16-bit cache: at batch 1 each launch costs microseconds, as much as the work of these small
kernels, so rotating q and k (`rope_qkv_store`), the split reduction and the merge are folded
together. Each program rotates its query heads and the new key itself (a few hundred values,
cheaper than a launch); the programs reduce only the old positions 0..pos-1 from the cache and one
of them adds position pos from registers, so no program reads the row that another is writing.
The partials meet in a persistent workspace and the program that arrives last for its kv head
merges them, the counter scheme of `epilogue.store_output`, so no second kernel is needed. On an
H200 (CUDA-graph replays, PDL on) this took a Llama-3-8B layer's step at batch 1 from 7.3 to 5.4 us
at position 100 and from 10.1 to 8.5 us at position 4000; inside the whole graphed decode step it
measured slower, so the engine keeps it off (`trico.engine.fused.ONE_LAUNCH_ATTENTION`).
"""

from __future__ import annotations

import math

import torch

from trico.kernels.gemv_a8 import QuantizedX
from trico.kernels.pdl import launch_kwargs, wait_for_producer
from trico.kernels.qlinear import INTERPRET
from trico.kernels.rope import check_decode_qkv

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


PREFETCH_ASM = "prefetch.global.L2 [$1]; mov.u32 $0, 0;"
"""One cache line into L2 (the dummy result is what `inline_asm_elementwise` has to return)."""

if triton is not None:
    _PREFETCH_ASM = tl.constexpr(PREFETCH_ASM)

    @triton.jit
    def _attend_range(
        q, k_ptr, v_ptr, ks_ptr, vs_ptr, kbase, sbase, start, end, stride_kl, sm_scale,
        REP_PAD: tl.constexpr, D: tl.constexpr, BLOCK_L: tl.constexpr, QUANT: tl.constexpr, DOT_F32: tl.constexpr,
    ):  # fmt: skip
        """Online softmax of q [REP_PAD, D] over cached positions start..end-1: (running max, sum, acc)."""
        offs_d = tl.arange(0, D)
        m_i = tl.full([REP_PAD], float("-inf"), dtype=tl.float32)
        l_i = tl.zeros([REP_PAD], dtype=tl.float32)
        acc = tl.zeros([REP_PAD, D], dtype=tl.float32)
        for l0 in range(start, end, BLOCK_L):
            offs_l = l0 + tl.arange(0, BLOCK_L)
            lmask = offs_l < end
            kv_off = kbase + offs_l[:, None] * stride_kl + offs_d[None, :]
            kt = tl.load(k_ptr + kv_off, mask=lmask[:, None], other=0.0)
            vt = tl.load(v_ptr + kv_off, mask=lmask[:, None], other=0.0)
            if QUANT:
                ksc = tl.load(ks_ptr + (sbase + offs_l), mask=lmask, other=0.0).to(tl.float32)
                vsc = tl.load(vs_ptr + (sbase + offs_l), mask=lmask, other=0.0).to(tl.float32)
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
        return m_i, l_i, acc

    @triton.jit
    def _partial(m_i, l_i, acc):
        """A split's normalized output and log-sum-exp (-inf where it saw no key)."""
        has = l_i > 0
        out = acc / tl.where(has, l_i, 1.0)[:, None]
        lse = tl.where(has, m_i + tl.log(tl.where(has, l_i, 1.0)), float("-inf"))
        return out, lse

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
        k_addr=0,
        v_addr=0,
        L=0,
        PREFETCH_LINES: tl.constexpr = 0,
    ):
        bh = tl.program_id(0)
        split = tl.program_id(1)
        b = bh // HKV
        hk = bh % HKV
        if PREFETCH_LINES > 0:
            # Before the wait (PDL): ask L2 for the first tile of this split's cached keys and values, so
            # the loads after it find them there. The position is read from L2 (.cg) and used only for
            # these requests: no value read before the wait decides a result. (Loading the tile itself
            # there measured slower: Triton no longer streamed it into shared memory for the dot.)
            early = tl.load(pos_ptr, cache_modifier=".cg").to(tl.int32) + 1
            first = split * (tl.cdiv(tl.cdiv(early, NSPLIT), BLOCK_L) * BLOCK_L)
            rows = tl.minimum(first + tl.arange(0, BLOCK_L), L - 1).to(tl.int64)
            nbytes = k_ptr.dtype.element_ty.primitive_bitwidth // 8
            at = (b * stride_kb + hk * stride_kh + rows * stride_kl).to(tl.int64) * nbytes
            line = at[:, None] + (tl.arange(0, PREFETCH_LINES) * 128)[None, :]
            tl.inline_asm_elementwise(
                _PREFETCH_ASM, "=r,l", [k_addr + line], dtype=tl.int32, is_pure=False, pack=1
            )
            tl.inline_asm_elementwise(
                _PREFETCH_ASM, "=r,l", [v_addr + line], dtype=tl.int32, is_pure=False, pack=1
            )
        wait_for_producer(PDL)
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
        m_i, l_i, acc = _attend_range(
            q, k_ptr, v_ptr, ks_ptr, vs_ptr, b * stride_kb + hk * stride_kh, b * stride_sb + hk * stride_sh,
            start, end, stride_kl, sm_scale, REP_PAD, D, BLOCK_L, QUANT, DOT_F32,
        )  # fmt: skip
        out, lse = _partial(m_i, l_i, acc)
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

    @triton.jit
    def _merge_group(
        o_ptr,
        lse_ptr,
        out_ptr,
        q_ptr,
        s_ptr,
        head0,
        NSPLIT: tl.constexpr,
        REP: tl.constexpr,
        REP_P2: tl.constexpr,
        D: tl.constexpr,
        MERGE_SPLITS: tl.constexpr,
        A8_QB: tl.constexpr,
        A8_CPW: tl.constexpr,
    ):
        """`_combine_kernel` for REP query heads, numbered b * H + h from head0 (partials and output rows).

        All heads at once and MERGE_SPLITS splits per load: the merge sits at the end of the
        kernel's critical path, so it takes a few wide loads, not a round trip per head.
        """
        offs_c = tl.arange(0, REP_P2)
        cmask = offs_c < REP
        slots = tl.arange(0, D)
        if A8_QB > 0:  # each lane combines the channel its int8 GEMV byte slot needs (see rmsnorm.py)
            offs_d = a8_source(slots, A8_CPW)
        else:
            offs_d = slots
        rows = (head0 + offs_c) * NSPLIT
        # .cg: other programs wrote the partials, and L1 is not coherent with their stores.
        lse = tl.load(
            lse_ptr + rows[:, None] + tl.arange(0, NSPLIT)[None, :],
            mask=cmask[:, None],
            other=0.0,
            cache_modifier=".cg",
        )
        m = tl.max(lse, axis=1)
        wsum = tl.sum(tl.exp(lse - m[:, None]), axis=1)  # splits without keys have lse = -inf, weight 0
        acc = tl.zeros([REP_P2, D], dtype=tl.float32)
        offs_k = tl.arange(0, MERGE_SPLITS)
        for s0 in tl.static_range(0, NSPLIT, MERGE_SPLITS):
            r = rows[:, None] + s0 + offs_k[None, :]
            w = tl.exp(
                tl.load(lse_ptr + r, mask=cmask[:, None], other=0.0, cache_modifier=".cg") - m[:, None]
            )
            o = tl.load(
                o_ptr + r[:, :, None] * D + offs_d[None, None, :],
                mask=cmask[:, None, None],
                other=0.0,
                cache_modifier=".cg",
            )
            acc += tl.sum(o * w[:, :, None], axis=1)
        res = (acc / wsum[:, None]).to(out_ptr.dtype.element_ty)
        heads = head0 + offs_c
        tl.store(out_ptr + heads[:, None] * D + offs_d[None, :], res, mask=cmask[:, None])
        if A8_QB > 0:  # heads are whole activation blocks; the rows of absent heads hold zeros
            n: tl.constexpr = REP_P2 * D
            dst = tl.reshape(heads[:, None] * D + slots[None, :], [n])
            every = tl.reshape(cmask[:, None] & (slots < D)[None, :], [n])
            a8_quantize_store(tl.reshape(res, [n]), dst, every, q_ptr, s_ptr, n, A8_QB)

    @triton.jit
    def _rotate(x_ptr, offs, partner, mask, c, s, first):
        """Rotate-half RoPE in fp32, the expression of `_rope_store_kernel` (so the rounding is the same)."""
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        xp = tl.load(x_ptr + partner, mask=mask, other=0.0).to(tl.float32)
        return tl.where(first, x * c - xp * s, x * c + xp * s)

    @triton.jit
    def _rope_attend_kernel(
        qkv_ptr,
        cos_ptr,
        sin_ptr,
        k_ptr,
        v_ptr,
        pos_ptr,
        o_ptr,
        lse_ptr,
        cnt_ptr,
        out_ptr,
        aq_ptr,
        as_ptr,
        HKV,
        stride_xb,
        stride_kb,
        stride_kh,
        stride_kl,
        sm_scale,
        NSPLIT: tl.constexpr,
        REP: tl.constexpr,
        REP_PAD: tl.constexpr,
        REP_P2: tl.constexpr,
        D: tl.constexpr,
        BLOCK_L: tl.constexpr,
        MERGE_SPLITS: tl.constexpr,
        DOT_F32: tl.constexpr,
        A8_QB: tl.constexpr,
        A8_CPW: tl.constexpr,
        PDL: tl.constexpr,
    ):
        wait_for_producer(PDL)
        bh = tl.program_id(0)
        split = tl.program_id(1)
        b = bh // HKV
        hk = bh % HKV
        H = HKV * REP
        pos = tl.load(pos_ptr)
        n_old = pos.to(tl.int32)  # the cache holds 0..pos-1; position pos comes from qkv
        chunk = tl.cdiv(tl.cdiv(n_old, NSPLIT), BLOCK_L) * BLOCK_L
        start = split * chunk
        end = tl.minimum(start + chunk, n_old)
        offs_r = tl.arange(0, REP_PAD)
        offs_d = tl.arange(0, D)
        first = offs_d < D // 2
        partner = (offs_d + D // 2) % D
        c = tl.load(cos_ptr + offs_d)
        s = tl.load(sin_ptr + offs_d)
        rmask = offs_r < REP
        heads = hk * REP + offs_r
        row = qkv_ptr + b * stride_xb
        # Rounded to qkv's dtype: the queries rope_qkv_store would have handed to decode_attention.
        qoff = heads[:, None] * D
        q = _rotate(
            row, qoff + offs_d[None, :], qoff + partner[None, :], rmask[:, None], c, s, first[None, :]
        )
        q = q.to(qkv_ptr.dtype.element_ty)
        koff = (H + hk) * D
        every = offs_d < D
        k_new = _rotate(row, koff + offs_d, koff + partner, every, c, s, first).to(k_ptr.dtype.element_ty)
        v_new = tl.load(row + (H + HKV + hk) * D + offs_d).to(v_ptr.dtype.element_ty)
        if split == 0:
            slot = b * stride_kb + hk * stride_kh + pos * stride_kl
            tl.store(k_ptr + slot + offs_d, k_new)
            tl.store(v_ptr + slot + offs_d, v_new)
        if DOT_F32:
            q = q.to(tl.float32)
        m_i, l_i, acc = _attend_range(
            q, k_ptr, v_ptr, k_ptr, v_ptr, b * stride_kb + hk * stride_kh, 0,
            start, end, stride_kl, sm_scale, REP_PAD, D, BLOCK_L, False, DOT_F32,
        )  # fmt: skip
        # The last chunk is the shortest (chunks round up), so its program takes the new token. (Taking
        # it before the loop, which frees k_new and v_new, ran slower on an H200.)
        if split == NSPLIT - 1:
            s_new = tl.sum(q.to(tl.float32) * k_new.to(tl.float32)[None, :], axis=1) * sm_scale
            m_new = tl.maximum(m_i, s_new)
            alpha = tl.exp(m_i - m_new)
            p_new = tl.exp(s_new - m_new)
            l_i = l_i * alpha + p_new
            acc = acc * alpha[:, None] + p_new[:, None] * v_new.to(tl.float32)[None, :]
            m_i = m_new
        out, lse = _partial(m_i, l_i, acc)
        prow = (bh * REP + offs_r) * NSPLIT + split
        tl.store(o_ptr + prow[:, None] * D + offs_d[None, :], out, mask=rmask[:, None])
        tl.store(lse_ptr + prow, lse, mask=rmask)
        tl.debug_barrier()  # every thread's partial is in before the counter moves
        arrived = tl.atomic_add(cnt_ptr + bh, 1, sem="acq_rel")
        if arrived == NSPLIT - 1:  # the other programs' partials are in: merge this kv head's query heads
            _merge_group(
                o_ptr,
                lse_ptr,
                out_ptr,
                aq_ptr,
                as_ptr,
                bh * REP,
                NSPLIT,
                REP,
                REP_P2,
                D,
                MERGE_SPLITS,
                A8_QB,
                A8_CPW,
            )
            tl.atomic_xchg(cnt_ptr + bh, 0)


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
        k_addr=k.data_ptr(),
        v_addr=v.data_ptr(),
        L=max_len,
        PREFETCH_LINES=0 if INTERPRET or quant else d * k.element_size() // 128,
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


_WORKSPACES: dict[tuple, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

_MERGE_TILE = 4096
"""Partial values per load of `_merge_group` (32 fp32 registers a thread at 4 warps); 2048 to 8192
timed about the same on an H200."""


def _rope_attend_workspace(
    device: torch.device, rows: int, d: int, tiles: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Partials (o [rows, d], lse [rows], fp32) and zeroed arrival counters [tiles] for `rope_decode_attention`.

    Reused across calls like `epilogue.split_workspace` (the kernel sets its counters back to zero,
    and every partial is written before it is read), but separate from it: that workspace must stay
    zero between calls and this one holds the last call's partials.
    """
    key = (device, rows, d, tiles)
    ws = _WORKSPACES.get(key)
    if ws is None:
        ws = _WORKSPACES[key] = (
            torch.empty(rows, d, dtype=torch.float32, device=device),
            torch.empty(rows, dtype=torch.float32, device=device),
            torch.zeros(tiles, dtype=torch.int32, device=device),
        )
    return ws


def rope_decode_attention(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    pos: torch.Tensor,
    n_heads: int,
    n_kv_heads: int,
    quantized_out: QuantizedX | None = None,
    block_l: int = 64,
) -> torch.Tensor:
    """`rope_qkv_store` then `decode_attention`, in one launch: the attention of one decode token.

    qkv [B, 1, (H + 2 Hkv) D] contiguous; cos/sin fp32 [1, D]; k_cache/v_cache [B, Hkv, L, D] in
    qkv's dtype (bf16/fp16; one layer of a static cache, dense in D, same strides); pos a 1-element
    device tensor. Writes the rotated key and the value at pos and returns the attention output
    [B, H, D] over positions 0..pos; `quantized_out` as in `decode_attention`.
    """
    assert triton is not None, "Triton is not installed"
    b, d = check_decode_qkv(qkv, cos, sin, k_cache, v_cache, pos, n_heads, n_kv_heads)
    hkv = n_kv_heads
    assert d >= 16, f"head_dim must be a power of two >= 16, got {d}"
    assert n_heads % hkv == 0, "query heads must be a multiple of kv heads"
    assert k_cache.dtype == v_cache.dtype == qkv.dtype and qkv.dtype in (torch.bfloat16, torch.float16), (
        "16-bit caches in qkv's dtype only"
    )
    a8 = quantized_out
    if a8 is not None:
        assert a8.q.shape == (b, n_heads * d) and d % a8.qb == 0, (
            f"quantized_out must be [{b}, {n_heads * d}]"
        )
    rep = n_heads // hkv
    rep_p2 = triton.next_power_of_2(rep)
    nsplit = num_splits(b, hkv, k_cache.shape[2], block_l)
    o_part, lse, cnt = _rope_attend_workspace(qkv.device, b * n_heads * nsplit, d, b * hkv)
    out = torch.empty(b, n_heads, d, dtype=qkv.dtype, device=qkv.device)
    _rope_attend_kernel[(b * hkv, nsplit)](
        qkv,
        cos,
        sin,
        k_cache,
        v_cache,
        pos,
        o_part,
        lse,
        cnt,
        out,
        a8.q if a8 is not None else out,
        a8.s if a8 is not None else out,
        hkv,
        qkv.stride(0),
        k_cache.stride(0),
        k_cache.stride(1),
        k_cache.stride(2),
        1.0 / math.sqrt(d),
        NSPLIT=nsplit,
        REP=rep,
        REP_PAD=max(16, rep_p2),
        REP_P2=rep_p2,
        D=d,
        BLOCK_L=block_l,
        MERGE_SPLITS=min(nsplit, max(1, _MERGE_TILE // (rep_p2 * d))),
        DOT_F32=INTERPRET,
        A8_QB=a8.qb if a8 is not None else 0,
        A8_CPW=32 // a8.bits if a8 is not None else 4,
        num_warps=4,
        # 2 stages (half the shared memory of 3, so more programs fit an SM) beat 3 at every shape timed.
        num_stages=2,
        **launch_kwargs(qkv),
    )
    return out
