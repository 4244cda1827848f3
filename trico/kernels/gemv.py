"""One-row GEMV y = x @ W^T for word-packed integer weights (decode at batch 1), three ALU ops per weight.

`qlinear.qmm`'s one-row path spends 5-6 instructions per weight (variable shift, mask, int-to-float
by the 2^23 trick, bias subtraction, multiply, in-thread sum). Here codes are read from int32 words
(4 int8, 8 int4 or 16 int2 codes) one bit position at a time, so every shift is a compile-time
constant, and each code is moved straight into the top mantissa bits of 1.0:

    f = bitcast_f32(((word <</>> sh) & MASK) | 0x3F800000) = 1 + c / 2^B   (exact)

so a weight costs a shift, one LOP3 and one FMA: acc += f * x. The x values of a tile are loaded as
16-byte vectors [words, codes per word] and taken apart in registers (`_column`), instead of one
scalar load per code position (measured 0-17% faster for int4/int2 on the H100). Per word the
constant part is removed with the sum of the x values involved:

    sum_p (c_p - off) x_p = 2^B (sum_p f_p x_p - sum_p x_p) - off * sum_p x_p

and the group scale multiplies that once per word. The fp32 products of (1 + c / 2^B) keep c exactly,
so only fp32 accumulation rounding remains. Formats: int8 (signed), uint8, uint4, uint2, tern2, with
per-row or per-group fp16 scales (a group a whole number of words) and optional mins.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trico.kernels.epilogue import check_residual, split_workspace
from trico.kernels.pdl import launch_kwargs, wait_for_producer
from trico.kernels.prologue import SILU, Prologue, no_prologue_args
from trico.kernels.qlinear import PackedWeight, triton

if triton is not None:
    import triton.language as tl

    from trico.kernels.epilogue import load_residual, store_output
    from trico.kernels.prologue import finish_input, load_raw, row_rstd

GEMV_BITS = {"int8": 8, "uint8": 8, "uint4": 4, "uint2": 2, "tern2": 2}
"""Formats this kernel reads, with their bits per code."""


def gemv_supported(pw: PackedWeight) -> bool:
    """Whether the word-packed GEMV reads this weight (K whole words; groups whole words)."""
    if pw.fmt not in GEMV_BITS:
        return False
    per_word = 32 // GEMV_BITS[pw.fmt]
    return pw.k % per_word == 0 and (pw.scale_mode in (0, 1) or pw.group_size % per_word == 0)


@dataclass(frozen=True)
class GemvWordConfig:
    """Launch shape of the word-packed GEMV."""

    block_n: int
    block_w: int
    """int32 words of a row per loop step."""
    num_warps: int = 4
    split_k: int = 1
    """Programs along K, summed with fp32 atomics (fills the GPU when N is small)."""
    num_stages: int = 2


LEAN_LOOP = True
"""Allow the lean loop (`lean_loop`; False: the previous loop everywhere, for same-run A/B timing)."""


def lean_loop(bits: int, config: GemvWordConfig) -> bool:
    """Whether a launch runs the lean loop: two tiles per pass (no copy of the prefetched words), products
    straight into the accumulator for one-scale-per-row weights, the int8 sign flip inside the mask.

    It takes 4.35 -> 3.79 instructions per int8 code in the sm_90 SASS (benchmarks/sass_mix.py), but on
    the H200 (benchmarks/results/gemv-lean-ab-h200.json, dispatched shapes, GB/s lean / old) it won
    only on the unsplit int8 layers: 12288x4096 2663 / 2396, 22016x4096 3017 / 2786; it lost on the
    split ones (4096x4096 1773 / 1996, 4096x11008 2342 / 2593), on every tern2 layer (12288x4096
    783 / 1045) and was even on int4-g128 (981 / 1010, 1332 / 1323).
    """
    return LEAN_LOOP and bits == 8 and config.split_k == 1


if triton is not None:

    @triton.jit
    def _column(t, P: tl.constexpr, CPW: tl.constexpr, BLOCK_W: tl.constexpr):
        """Column P of t [BW, CPW], taken apart bit by bit of P with register-level splits."""
        a, b = tl.split(tl.reshape(t, [BLOCK_W, CPW // 2, 2]))
        t = a if P % 2 == 0 else b
        if CPW >= 4:
            a, b = tl.split(tl.reshape(t, [BLOCK_W, CPW // 4, 2]))
            t = a if (P // 2) % 2 == 0 else b
        if CPW >= 8:
            a, b = tl.split(tl.reshape(t, [BLOCK_W, CPW // 8, 2]))
            t = a if (P // 4) % 2 == 0 else b
        if CPW >= 16:
            a, b = tl.split(tl.reshape(t, [BLOCK_W, 1, 2]))
            t = a if (P // 8) % 2 == 0 else b
        return tl.reshape(t, [BLOCK_W])

    @triton.jit
    def _word_step(
        u,
        xt,
        ww,
        mask_w,
        acc,
        xtot,
        s_ptr,
        m_ptr,
        offs_n,
        mask_n,
        stride_sn,
        BITS: tl.constexpr,
        OFFSET: tl.constexpr,
        SIGNED8: tl.constexpr,
        HAS_MIN: tl.constexpr,
        PER_ROW: tl.constexpr,
        WORDS_PER_GROUP: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_W: tl.constexpr,
        LEAN: tl.constexpr = True,
    ):
        """Multiply one [BN, BW] tile of words with its x values xt [BW, CPW]; returns the updated (acc, xtot)."""
        CPW: tl.constexpr = 32 // BITS
        MASK: tl.constexpr = ((1 << BITS) - 1) << (23 - BITS)
        SCALE: tl.constexpr = float(1 << BITS)
        # Two's complement bytes become c + 128 by flipping their top bit, which after the shift sits
        # at bit 22: ((t & MASK) | ONE) ^ SIGN == (t & MASK) ^ (ONE | SIGN), one LOP3 per weight.
        FLIP: tl.constexpr = 0x3F800000 | (1 << 22) if SIGNED8 and LEAN else 0x3F800000
        if SIGNED8 and not LEAN:
            u = u ^ -2139062144  # 0x80808080: two's complement bytes -> c + 128
        # One scale per row: the products go straight into acc; grouped weights scale each step's sum.
        if PER_ROW and LEAN:
            part = acc
        else:
            part = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32)
        xt = xt.to(tl.float32)
        xw = tl.sum(xt, axis=1)
        for p in tl.static_range(CPW):
            xp = _column(xt, p, CPW, BLOCK_W)
            sh = 23 - BITS - BITS * p  # a compile-time constant per bit position
            if sh >= 0:
                t = u << sh
            else:
                t = u >> (-sh)  # arithmetic shift: the sign bits land above the mask
            f = ((t & MASK) ^ FLIP).to(tl.float32, bitcast=True)
            part += f * xp[None, :]
        if PER_ROW:
            acc = part if LEAN else acc + part
            xtot += xw
        else:
            sidx = offs_n[:, None] * stride_sn + (ww // WORDS_PER_GROUP)[None, :]
            smask = mask_n[:, None] & mask_w[None, :]
            s = tl.load(s_ptr + sidx, mask=smask, other=0.0).to(tl.float32)
            acc += ((part - xw[None, :]) * SCALE - OFFSET * xw[None, :]) * s
            if HAS_MIN:
                acc += tl.load(m_ptr + sidx, mask=smask, other=0.0).to(tl.float32) * xw[None, :]
        return acc, xtot

    @triton.jit
    def _gemv_kernel(
        x_ptr,
        w_ptr,
        s_ptr,
        m_ptr,
        y_ptr,
        ws_ptr,
        cnt_ptr,
        res_ptr,
        nw_ptr,
        eps,
        half,
        N,
        KW,
        stride_wn,
        stride_sn,
        PROLOGUE: tl.constexpr,
        NORM_K: tl.constexpr,
        BITS: tl.constexpr,
        OFFSET: tl.constexpr,
        SIGNED8: tl.constexpr,
        HAS_MIN: tl.constexpr,
        PER_ROW: tl.constexpr,
        WORDS_PER_GROUP: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_W: tl.constexpr,
        SPLIT_K: tl.constexpr,
        HAS_RES: tl.constexpr,
        PDL: tl.constexpr,
        LEAN: tl.constexpr,
    ):
        # Full tiles load without a mask along K (a mask there would stop 16-byte vector loads); the
        # last partial tile of a split, if any, runs once more with one.
        pid_n = tl.program_id(0)
        pid_k = tl.program_id(1)
        SCALE: tl.constexpr = float(1 << BITS)
        CPW: tl.constexpr = 32 // BITS
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        per_split = tl.cdiv(tl.cdiv(KW, SPLIT_K), BLOCK_W) * BLOCK_W
        w_lo = pid_k * per_split
        w_hi = tl.minimum(w_lo + per_split, KW)
        w_full = w_lo + tl.maximum(w_hi - w_lo, 0) // BLOCK_W * BLOCK_W
        rows = w_ptr + offs_n[:, None] * stride_wn
        acc = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32)
        xtot = tl.zeros([BLOCK_W], dtype=tl.float32)
        every = tl.full([BLOCK_W], 1, tl.int1)
        zero = tl.zeros([1, BLOCK_W], dtype=tl.int32)
        # Software prefetch: the next tile's words are requested before this tile is multiplied, so
        # two tiles per program are in flight (Triton pipelines only loads that feed a dot).
        u_next = tl.load(
            rows + (w_lo + tl.arange(0, BLOCK_W))[None, :],
            mask=mask_n[:, None] & (zero + w_lo < w_full),
            other=0,
        )
        wait_for_producer(PDL)  # the first weight tile is on its way; x and y belong to other kernels
        res = load_residual(res_ptr, offs_n, mask_n, HAS_RES)
        # x (and what its prologue reads) is prefetched a tile ahead too: its L2 round trip would
        # otherwise stall every step after the words arrive.
        offs_x = (w_lo + tl.arange(0, BLOCK_W))[:, None] * CPW + tl.arange(0, CPW)[None, :]
        x_full = tl.full([BLOCK_W, CPW], 1, tl.int1)
        xa_next, xb_next = load_raw(x_ptr + offs_x, x_full & (w_lo < w_full), nw_ptr + offs_x, half, PROLOGUE)
        if PROLOGUE == 1:
            rstd = row_rstd(x_ptr, KW * CPW, eps, NORM_K)
        else:
            rstd = 0.0
        if LEAN:
            # Two tiles per iteration, each loaded into registers of its own: with one prefetched tile
            # rotating through the loop (u = u_next) ptxas copied every word once per step.
            pairs_end = w_lo + tl.maximum(w_full - w_lo, 0) // (2 * BLOCK_W) * (2 * BLOCK_W)
            for w0 in range(w_lo, pairs_end, 2 * BLOCK_W):
                ww = w0 + tl.arange(0, BLOCK_W)
                u1 = tl.load(rows + (ww + BLOCK_W)[None, :], mask=mask_n[:, None] & (zero == 0), other=0)
                xa1, xb1 = load_raw(
                    x_ptr + offs_x + BLOCK_W * CPW, x_full, nw_ptr + offs_x + BLOCK_W * CPW, half, PROLOGUE
                )
                acc, xtot = _word_step(
                    u_next, finish_input(xa_next, xb_next, rstd, PROLOGUE), ww, every, acc, xtot, s_ptr, m_ptr,
                    offs_n, mask_n, stride_sn, BITS, OFFSET, SIGNED8, HAS_MIN, PER_ROW, WORDS_PER_GROUP, BLOCK_N, BLOCK_W,
                )  # fmt: skip
                # uniform across the tile: loads stay 16-byte vectors
                more = zero + (w0 + 2 * BLOCK_W) < w_full
                u_next = tl.load(rows + (ww + 2 * BLOCK_W)[None, :], mask=mask_n[:, None] & more, other=0)
                offs_x += 2 * BLOCK_W * CPW
                xa_next, xb_next = load_raw(
                    x_ptr + offs_x, x_full & (w0 + 2 * BLOCK_W < w_full), nw_ptr + offs_x, half, PROLOGUE
                )
                acc, xtot = _word_step(
                    u1, finish_input(xa1, xb1, rstd, PROLOGUE), ww + BLOCK_W, every, acc, xtot, s_ptr, m_ptr,
                    offs_n, mask_n, stride_sn, BITS, OFFSET, SIGNED8, HAS_MIN, PER_ROW, WORDS_PER_GROUP, BLOCK_N, BLOCK_W,
                )  # fmt: skip
            if pairs_end < w_full:  # an odd number of full tiles: the last one is already loaded
                acc, xtot = _word_step(
                    u_next, finish_input(xa_next, xb_next, rstd, PROLOGUE), pairs_end + tl.arange(0, BLOCK_W), every,
                    acc, xtot, s_ptr, m_ptr, offs_n, mask_n, stride_sn, BITS, OFFSET, SIGNED8, HAS_MIN, PER_ROW,
                    WORDS_PER_GROUP, BLOCK_N, BLOCK_W,
                )  # fmt: skip
        else:
            for w0 in range(w_lo, w_full, BLOCK_W):
                ww = w0 + tl.arange(0, BLOCK_W)
                u = u_next
                more = zero + (w0 + BLOCK_W) < w_full  # uniform across the tile: loads stay 16-byte vectors
                u_next = tl.load(rows + (ww + BLOCK_W)[None, :], mask=mask_n[:, None] & more, other=0)
                xa, xb = xa_next, xb_next
                offs_x += BLOCK_W * CPW
                xa_next, xb_next = load_raw(
                    x_ptr + offs_x, x_full & (w0 + BLOCK_W < w_full), nw_ptr + offs_x, half, PROLOGUE
                )
                acc, xtot = _word_step(
                    u, finish_input(xa, xb, rstd, PROLOGUE), ww, every, acc, xtot, s_ptr, m_ptr, offs_n,
                    mask_n, stride_sn, BITS, OFFSET, SIGNED8, HAS_MIN, PER_ROW, WORDS_PER_GROUP, BLOCK_N,
                    BLOCK_W, False,
                )  # fmt: skip
        if w_full < w_hi:
            ww = w_full + tl.arange(0, BLOCK_W)
            mask_w = ww < w_hi
            u = tl.load(rows + ww[None, :], mask=mask_n[:, None] & mask_w[None, :], other=0)
            offs_x = ww[:, None] * CPW + tl.arange(0, CPW)[None, :]
            xa, xb = load_raw(x_ptr + offs_x, mask_w[:, None], nw_ptr + offs_x, half, PROLOGUE)
            acc, xtot = _word_step(
                u, finish_input(xa, xb, rstd, PROLOGUE), ww, mask_w, acc, xtot, s_ptr, m_ptr, offs_n, mask_n,
                stride_sn, BITS, OFFSET, SIGNED8, HAS_MIN, PER_ROW, WORDS_PER_GROUP, BLOCK_N, BLOCK_W, LEAN,
            )  # fmt: skip
        if PER_ROW:
            xs = tl.sum(xtot, axis=0)
            y = (tl.sum(acc, axis=1) - xs) * SCALE - OFFSET * xs
            y = y * tl.load(s_ptr + offs_n * stride_sn, mask=mask_n, other=0.0).to(tl.float32)
            if HAS_MIN:
                y += tl.load(m_ptr + offs_n * stride_sn, mask=mask_n, other=0.0).to(tl.float32) * xs
        else:
            y = tl.sum(acc, axis=1)
        store_output(y_ptr, ws_ptr, cnt_ptr, res, offs_n, mask_n, y, pid_n, SPLIT_K, HAS_RES)


def gemv_default_config(pw: PackedWeight) -> GemvWordConfig:
    """A launch shape valid for every supported weight."""
    return GemvWordConfig(16, 32)


def gemv_candidates(pw: PackedWeight) -> list[GemvWordConfig]:
    """Launch shapes worth timing for this weight: row tiles of 16-128, split-K up to 16 (<= 16 programs per SM)."""
    kw = pw.k * GEMV_BITS[pw.fmt] // 32
    return [
        GemvWordConfig(bn, bw, warps, sk)
        for bn in (16, 32, 64, 128)
        for bw in (32, 64)
        for warps in (2, 4)
        for sk in (1, 2, 4, 8, 16)
        if bn * bw >= 256 * warps and -(-pw.n // bn) * sk <= 16 * 132 and kw // sk >= bw
    ]


def gemv_words(
    x: torch.Tensor,
    pw: PackedWeight,
    config: GemvWordConfig | None = None,
    residual: torch.Tensor | None = None,
    prologue: Prologue | None = None,
) -> torch.Tensor:
    """y [1, N] = x [1, K] @ W^T (+ residual [1, N]) for a word-packed integer weight (one row of x).

    With a `prologue` x is its raw input (h for RMSNorm, [1, 2K] gate/up for the SiLU gate).
    """
    assert triton is not None, "Triton is not installed"
    assert gemv_supported(pw), f"the word GEMV does not take {pw.fmt} with K={pw.k}, group {pw.group_size}"
    width = 2 * pw.k if prologue is not None and prologue.kind == SILU else pw.k
    assert x.dim() == 2 and x.shape == (1, width) and x.is_contiguous(), f"x must be [1, {width}], contiguous"
    config = config or gemv_default_config(pw)
    bits = GEMV_BITS[pw.fmt]
    words = pw.units.view(torch.uint8).view(torch.int32)
    per_word = 32 // bits
    per_row = pw.scale_mode in (0, 1)
    split = config.split_k
    check_residual(residual, (1, pw.n), x.dtype)
    y = torch.empty(1, pw.n, dtype=x.dtype, device=x.device)
    scales = pw.scales
    mins = pw.mins if pw.mins is not None else scales
    grid = (triton.cdiv(pw.n, config.block_n), split)
    ws, cnt = split_workspace(x.device, pw.n, grid[0]) if split > 1 else (y, y)
    _gemv_kernel[grid](
        x,
        words,
        scales,
        mins,
        y,
        ws,
        cnt,
        residual if residual is not None else y,
        N=pw.n,
        KW=pw.k // per_word,
        stride_wn=words.stride(0),
        stride_sn=pw.stride_sn,
        **(no_prologue_args(x) if prologue is None else prologue.launch_args(x)),
        BITS=bits,
        OFFSET=128.0 if pw.fmt == "int8" else float(pw.offset),
        SIGNED8=pw.fmt == "int8",
        HAS_MIN=pw.mins is not None,
        PER_ROW=per_row,
        WORDS_PER_GROUP=1 if per_row else pw.group_size // per_word,
        BLOCK_N=config.block_n,
        BLOCK_W=config.block_w,
        SPLIT_K=split,
        HAS_RES=residual is not None,
        LEAN=lean_loop(bits, config),
        num_warps=config.num_warps,
        num_stages=config.num_stages,
        **launch_kwargs(x),
    )
    return y
