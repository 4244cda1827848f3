"""One-row GEMV y = x @ W^T over integer codes repacked "chunk-planar", so no register shuffles are needed.

The storage format (trico.quant.packing) puts codes k = 8w..8w+7 of a row into word w. A kernel
that multiplies code position p of a tile of words needs the x values 8w + p, a stride-8 gather,
so `gemv.py` loads x as [words, 8] vectors and takes them apart in registers, which costs layout
conversions (barriers) on every tile. Here the codes are repacked once, at load time, so that
within a chunk of CK = CPW * WPC consecutive k (CPW codes per word, WPC words per chunk)

    code position p of word wl holds k = chunk * CK + p * WPC + wl

and the x values that code position p of a tile needs are WPC-long contiguous runs: each thread
loads its own x directly in the layout of the weight tile. A chunk never straddles a scale group,
so the group of a word is w // (G / CPW) as before. Per weight the kernel spends a shift, one
LOP3 and one FMA (the code goes into the top mantissa bits of 1.0, f = 1 + c / 2^B, exactly):

    sum_p (c_p - off) x_p = 2^B * sum_p f_p x_p - (2^B + off) * sum_p x_p

With `glu=True` x is the [1, 2H] output of a fused gate/up projection and the kernel reads
silu(g) * u on the fly (rounded to the activation dtype like `silu_mul_packed`), so the MLP needs
no separate activation kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trico.kernels.qlinear import PackedWeight, triton, unpack_codes

if triton is not None:
    import triton.language as tl

PLANAR_BITS = {"int8": 8, "uint8": 8, "uint4": 4, "uint2": 2, "tern2": 2}
"""Formats that repack into planar words, with their bits per code."""

ROW_PAD_WORDS = 16
"""Rows are padded to a multiple of this many words, so Triton sees aligned rows (16-byte loads)."""


@dataclass(frozen=True)
class PlanarWeight:
    """A weight repacked chunk-planar for `gemv_planar`."""

    fmt: str
    words: torch.Tensor
    """int32 [N, KW rounded up to ROW_PAD_WORDS]."""
    scales: torch.Tensor
    mins: torch.Tensor | None
    n: int
    k: int
    bits: int
    wpc: int
    """Words per chunk."""
    group_size: int
    """Codes per scale along K (K: one scale per row)."""
    offset: float
    stride_sn: int

    @property
    def kw(self) -> int:
        """Words per row (without padding)."""
        return self.k * self.bits // 32


def planar_chunk(k: int, group_size: int, bits: int) -> int | None:
    """Codes per chunk for this shape (the largest power of two <= 128 dividing K and the group), or None."""
    ck = math.gcd(k, group_size if group_size < k else k, 128)
    return ck if ck >= 4 * (32 // bits) else None  # >= 4 words per chunk: 16-byte word and x runs


def planar_supported(pw: PackedWeight) -> bool:
    """Whether `to_planar` can repack this weight."""
    return pw.fmt in PLANAR_BITS and planar_chunk(pw.k, pw.group_size, PLANAR_BITS[pw.fmt]) is not None


def planar_words(codes: torch.Tensor, bits: int, wpc: int) -> torch.Tensor:
    """Unsigned codes [N, K] (0..2^B-1) -> planar int32 words [N, K*B/32] (no row padding)."""
    n, k = codes.shape
    cpw = 32 // bits
    c = codes.to(torch.int64).view(n, k // (cpw * wpc), cpw, wpc).transpose(2, 3)
    shifts = torch.arange(cpw, device=codes.device, dtype=torch.int64) * bits
    words = (c << shifts).sum(-1).reshape(n, k * bits // 32)
    return torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)


def planar_codes(words: torch.Tensor, bits: int, wpc: int, k: int) -> torch.Tensor:
    """Inverse of `planar_words`: planar words [N, >= K*B/32] -> unsigned codes [N, K] (int32)."""
    n = words.shape[0]
    cpw = 32 // bits
    w = words[:, : k * bits // 32].to(torch.int64) & 0xFFFFFFFF
    shifts = torch.arange(cpw, device=words.device, dtype=torch.int64) * bits
    c = (w.view(n, k // (cpw * wpc), wpc, 1) >> shifts) & ((1 << bits) - 1)
    return c.transpose(2, 3).reshape(n, k).to(torch.int32)


def to_planar(pw: PackedWeight) -> PlanarWeight:
    """Repack a kernel view of a QLinear weight for `gemv_planar` (one copy, done once per weight)."""
    assert planar_supported(pw), f"no planar layout for {pw.fmt} with K={pw.k}, group {pw.group_size}"
    bits = PLANAR_BITS[pw.fmt]
    ck = planar_chunk(pw.k, pw.group_size, bits)
    wpc = ck * bits // 32
    qweight = pw.units.view(torch.uint8).view(pw.n, -1) if pw.fmt != "int8" else pw.units
    codes = unpack_codes(qweight, pw.fmt, pw.k)
    if pw.fmt == "int8":
        codes = codes + 128  # stored biased; the kernel's offset takes the 128 back out
    words = planar_words(codes, bits, wpc)
    pad = -words.shape[1] % ROW_PAD_WORDS
    if pad:
        words = torch.nn.functional.pad(words, (0, pad))
    offset = 128.0 if pw.fmt == "int8" else float(pw.offset)
    return PlanarWeight(
        pw.fmt,
        words.contiguous(),
        pw.scales,
        pw.mins,
        pw.n,
        pw.k,
        bits,
        wpc,
        pw.group_size,
        offset,
        pw.stride_sn,
    )


@dataclass(frozen=True)
class PlanarConfig:
    """Launch shape of the planar GEMV."""

    block_n: int
    block_w: int
    """int32 words of a row per loop step (a multiple of the chunk's words)."""
    num_warps: int = 4
    split_k: int = 1
    """Programs along K, summed with fp32 atomics (fills the GPU when N is small)."""


if triton is not None:

    @triton.jit
    def _planar_kernel(
        x_ptr,
        w_ptr,
        s_ptr,
        m_ptr,
        y_ptr,
        N,
        KW,
        WORDS_PER_SPLIT,
        HGLU,
        stride_wn,
        stride_sn,
        BITS: tl.constexpr,
        OFFSET: tl.constexpr,
        HAS_MIN: tl.constexpr,
        PER_ROW: tl.constexpr,
        WPC: tl.constexpr,
        WORDS_PER_GROUP: tl.constexpr,
        GLU: tl.constexpr,
        EVEN: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_W: tl.constexpr,
        SPLIT_K: tl.constexpr,
    ):
        CPW: tl.constexpr = 32 // BITS
        CK: tl.constexpr = CPW * WPC
        MASK: tl.constexpr = ((1 << BITS) - 1) << (23 - BITS)
        SCALE: tl.constexpr = float(1 << BITS)
        pid_n = tl.program_id(0)
        w_lo = tl.program_id(1) * WORDS_PER_SPLIT
        w_hi = tl.minimum(w_lo + WORDS_PER_SPLIT, KW)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        rows = w_ptr + offs_n[:, None] * stride_wn
        acc = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32)
        xtot = tl.zeros([BLOCK_W], dtype=tl.float32)
        if EVEN:
            # Software prefetch: the next tile's words are requested before this one is multiplied
            # (Triton pipelines only loads that feed a dot); the last prefetch re-reads a valid tile.
            u_next = tl.load(rows + (w_lo + tl.arange(0, BLOCK_W))[None, :])
        for w0 in range(w_lo, w_hi, BLOCK_W):
            ww = w0 + tl.arange(0, BLOCK_W)
            # x offset of code position 0 of each word; position p adds p * WPC
            xo = (ww // WPC) * CK + ww % WPC
            if EVEN:
                u = u_next
                nxt = tl.minimum(w0 + BLOCK_W, w_hi - BLOCK_W)
                u_next = tl.load(rows + (nxt + tl.arange(0, BLOCK_W))[None, :])
                mask_w = ww < KW  # unused: x loads stay unmasked too
            else:
                mask_w = ww < w_hi
                u = tl.load(rows + ww[None, :], mask=mask_n[:, None] & mask_w[None, :], other=0)
            part = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float32)
            xw = tl.zeros([BLOCK_W], dtype=tl.float32)
            for p in tl.static_range(CPW):
                if EVEN:
                    xv = tl.load(x_ptr + xo + p * WPC)
                else:
                    xv = tl.load(x_ptr + xo + p * WPC, mask=mask_w, other=0.0)
                if GLU:
                    if EVEN:
                        uv = tl.load(x_ptr + HGLU + xo + p * WPC)
                    else:
                        uv = tl.load(x_ptr + HGLU + xo + p * WPC, mask=mask_w, other=0.0)
                    gf = xv.to(tl.float32)
                    act = (gf / (1.0 + tl.exp(-gf))).to(xv.dtype)  # rounded like silu_mul_packed
                    xv = (act.to(tl.float32) * uv.to(tl.float32)).to(xv.dtype)
                xp = xv.to(tl.float32)
                xw += xp
                sh = 23 - BITS - BITS * p  # a compile-time constant per code position
                if sh >= 0:
                    t = u << sh
                else:
                    t = u >> (-sh)  # arithmetic shift: the sign bits land above the mask
                f = ((t & MASK) | 0x3F800000).to(tl.float32, bitcast=True)
                part += f * xp[None, :]
            if PER_ROW:
                acc += part
                xtot += xw
            else:
                sidx = offs_n[:, None] * stride_sn + (ww // WORDS_PER_GROUP)[None, :]
                if EVEN:
                    s = tl.load(s_ptr + sidx).to(tl.float32)
                else:
                    s = tl.load(s_ptr + sidx, mask=mask_n[:, None] & mask_w[None, :], other=0.0).to(
                        tl.float32
                    )
                acc += (part * SCALE - xw[None, :] * (SCALE + OFFSET)) * s
                if HAS_MIN:
                    if EVEN:
                        mn = tl.load(m_ptr + sidx).to(tl.float32)
                    else:
                        mn = tl.load(m_ptr + sidx, mask=mask_n[:, None] & mask_w[None, :], other=0.0)
                        mn = mn.to(tl.float32)
                    acc += mn * xw[None, :]
        if PER_ROW:
            xs = tl.sum(xtot, axis=0)
            y = tl.sum(acc, axis=1) * SCALE - (SCALE + OFFSET) * xs
            y = y * tl.load(s_ptr + offs_n * stride_sn, mask=mask_n, other=0.0).to(tl.float32)
            if HAS_MIN:
                y += tl.load(m_ptr + offs_n * stride_sn, mask=mask_n, other=0.0).to(tl.float32) * xs
        else:
            y = tl.sum(acc, axis=1)
        if SPLIT_K == 1:
            tl.store(y_ptr + offs_n, y.to(y_ptr.dtype.element_ty), mask=mask_n)
        else:
            tl.atomic_add(y_ptr + offs_n, y, mask=mask_n)


def planar_default_config(pl: PlanarWeight) -> PlanarConfig:
    """A launch shape valid for every planar weight (tile width = one chunk)."""
    return PlanarConfig(16, pl.wpc)


def planar_candidates(pl: PlanarWeight) -> list[PlanarConfig]:
    """Launch shapes worth timing for this weight (tiles of 1-4 chunks, up to 64 words wide)."""
    widths = [pl.wpc * c for c in (1, 2, 4) if pl.wpc * c <= 64] or [pl.wpc]
    splits = (1, 2, 4) if pl.n <= 8192 else (1,)
    return [
        PlanarConfig(bn, bw, warps, sk)
        for bn in (16, 32, 64)
        for bw in widths
        for warps in (4, 8)
        for sk in splits
        if bn * bw >= 64 * warps  # at least two words per thread
    ]


def gemv_planar(
    x: torch.Tensor, pl: PlanarWeight, config: PlanarConfig | None = None, glu: bool = False
) -> torch.Tensor:
    """y [1, N] = x [1, K] @ W^T; with glu, x is [1, 2K] and silu(x[:, :K]) * x[:, K:] is used."""
    assert triton is not None, "Triton is not installed"
    k_in = 2 * pl.k if glu else pl.k
    assert x.dim() == 2 and x.shape == (1, k_in) and x.is_contiguous(), f"x must be [1, {k_in}], contiguous"
    config = config or planar_default_config(pl)
    assert config.block_w % pl.wpc == 0, f"block_w must be a multiple of the chunk's {pl.wpc} words"
    kw, split = pl.kw, config.split_k
    per_split = -(-kw // split)
    per_split = -(-per_split // config.block_w) * config.block_w
    even = kw % per_split == 0 and per_split % config.block_w == 0 and pl.n % config.block_n == 0
    per_row = pl.group_size >= pl.k
    y = torch.zeros if split > 1 else torch.empty
    y = y(1, pl.n, dtype=torch.float32 if split > 1 else x.dtype, device=x.device)
    mins = pl.mins if pl.mins is not None else pl.scales
    grid = (triton.cdiv(pl.n, config.block_n), triton.cdiv(kw, per_split))
    _planar_kernel[grid](
        x,
        pl.words,
        pl.scales,
        mins,
        y,
        pl.n,
        kw,
        per_split,
        pl.k,
        pl.words.stride(0),
        pl.stride_sn,
        BITS=pl.bits,
        OFFSET=pl.offset,
        HAS_MIN=pl.mins is not None,
        PER_ROW=per_row,
        WPC=pl.wpc,
        WORDS_PER_GROUP=1 if per_row else pl.group_size * pl.bits // 32,
        GLU=glu,
        EVEN=even,
        BLOCK_N=config.block_n,
        BLOCK_W=config.block_w,
        SPLIT_K=split,
        num_warps=config.num_warps,
    )
    return y if split == 1 else y.to(x.dtype)
