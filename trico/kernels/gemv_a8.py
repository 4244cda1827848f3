"""One-row GEMV with int8 activations: integer codes times int8-quantized x through `dp4a`, 4 products per instruction.

Nsight Compute on the H200 (benchmarks/results/ncu/, via benchmarks/ncu_target.py) shows the bf16-activation word
GEMV (`gemv.py`) issuing 6.2 instructions per int4 weight (4.9 per 2-bit, 6.8 per int8) at about half
the issue rate: it is instruction-bound at 1.3 TB/s. Here x is first quantized to int8 in blocks
of QB codes along K (one fp32 scale per block, symmetric, round half up), and each int32 word of
codes meets a word of four int8 x values in one `dp4a` (4 multiply-adds into an int32), so a weight
costs about one instruction. This is the activation scheme of llama.cpp's quantized GEMVs: it
changes the numbers (x carries int8 precision per block), so it is opt-in (`a8` decode mode) and
its quality is measured separately.

The weights stay in trico's storage layout: code i of a word sits at bits B*i (k = CPW*w + i).
Masking plane p, `(u >> B*p) & MASK`, leaves the four codes i = p, p + CPW/4, ... of the word in the
four bytes, so `quantize_a8` writes x permuted within every CPW values to match: x word p of weight
word w holds x[CPW*w + p + j * CPW/4] in byte j. With integer sums exact, only the fp32 scaling
and accumulation order differ from `gemv_a8_reference`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trico.kernels.epilogue import check_residual, one_row_launch
from trico.kernels.pdl import launch_kwargs, wait_for_producer
from trico.kernels.qlinear import INTERPRET, PackedWeight, triton

if triton is not None:
    import triton.language as tl

    from trico.kernels.epilogue import load_residual, store_output

A8_BITS = {"int8": 8, "uint8": 8, "uint4": 4, "uint2": 2, "tern2": 2}
"""Weight formats this kernel reads, with their bits per code."""


def a8_block(k: int, bits: int) -> int | None:
    """Codes of x per activation scale: 32 (as llama.cpp's q8_1), or 4 words where a word holds 16 codes."""
    qb = max(32, 4 * (32 // bits))
    return qb if k % qb == 0 else None


def a8_supported(pw: PackedWeight) -> bool:
    """Whether the int8-activation GEMV reads this weight (whole words per row and per group)."""
    if pw.fmt not in A8_BITS:
        return False
    cpw = 32 // A8_BITS[pw.fmt]
    grouped = pw.scale_mode not in (0, 1)
    return (
        pw.k % cpw == 0
        and a8_block(pw.k, A8_BITS[pw.fmt]) is not None
        and (not grouped or pw.group_size % cpw == 0)
    )


def quantize_a8_reference(x: torch.Tensor, qb: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] -> (int8 codes [M, K] in K order, fp32 scales [M, K / qb]): symmetric, round half up."""
    m, k = x.shape
    blocks = x.float().view(m, k // qb, qb)
    amax = blocks.abs().amax(-1)
    amax = torch.where(amax > 0, amax, torch.ones_like(amax))
    inv = 127.0 / amax
    q = torch.floor(blocks * inv[..., None] + 0.5).clamp(-127, 127).to(torch.int8)
    return q.view(m, k), amax / 127.0


def a8_unpermute(q: torch.Tensor, bits: int) -> torch.Tensor:
    """`quantize_a8`'s codes (GEMV byte order) back in K order."""
    cpw, pl = 32 // bits, 32 // bits // 4
    order = torch.tensor([p + j * pl for p in range(pl) for j in range(4)], device=q.device)
    out = torch.empty_like(q).view(q.shape[0], -1, cpw)
    out[:, :, order] = q.view(q.shape[0], -1, cpw)
    return out.view_as(q)


def gemv_a8_reference(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales,  # noqa: ANN001 - as QLinear stores them
    mins,  # noqa: ANN001
    fmt: str,
    group_size: int,
    k: int,
    quantized_x: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The math of the kernel in float64: (int8 x with block scales) @ W^T, returned in x's dtype.

    `quantized_x` (codes in K order, scales) replaces the reference quantization of x, to check the
    GEMV alone where a rounding tie could quantize one value differently.
    """
    from trico.kernels.qlinear import dequantize_reference

    qb = a8_block(k, A8_BITS[fmt])
    q, s = quantized_x if quantized_x is not None else quantize_a8_reference(x, qb)
    xa = (q.double().view(x.shape[0], -1, qb) * s.double()[..., None]).view_as(x)
    w = dequantize_reference(qweight, scales, mins, fmt, group_size, k).double()
    return (xa @ w.t()).to(x.dtype)


@dataclass(frozen=True)
class QuantizedX:
    """x quantized for the int8-activation GEMV: codes [M, K] in its byte order and fp32 scales [M, K / QB].

    Producer kernels (RMSNorm, SiLU gate, attention combine) can fill one while writing x, which
    saves the GEMV a separate quantization launch.
    """

    q: torch.Tensor
    s: torch.Tensor
    bits: int
    """Bits per weight code of the GEMV this is for (sets the byte order and QB)."""

    @property
    def qb(self) -> int:
        """Codes of x per scale."""
        return self.q.shape[1] // self.s.shape[1]


def new_quantized_x(rows: int, k: int, bits: int, device: torch.device) -> QuantizedX:
    """Empty buffers for x [rows, K] quantized for a GEMV over `bits`-bit weights."""
    qb = a8_block(k, bits)
    assert qb is not None, f"K={k} is not a multiple of the activation block for {bits}-bit weights"
    return QuantizedX(
        torch.empty(rows, k, dtype=torch.int8, device=device),
        torch.empty(rows, k // qb, dtype=torch.float32, device=device),
        bits,
    )


if triton is not None:

    @triton.jit
    def a8_source(slots, CPW: tl.constexpr):
        """Index along K of the x value that byte slot `slots` holds: slot (w, p, j) takes x[CPW*w + p + j*CPW/4]."""
        within = slots % CPW
        return (slots - within) + within // 4 + (within % 4) * (CPW // 4)

    @triton.jit
    def a8_quantize_store(v, slots, mask, q_ptr, s_ptr, BLOCK: tl.constexpr, QB: tl.constexpr):
        """Quantize v [BLOCK] (values of byte slots `slots`, QB-aligned, whole blocks masked) into q and s.

        Symmetric per block of QB: scale = absmax / 127, codes round half up. Masked lanes must hold 0.
        """
        vb = tl.reshape(v.to(tl.float32), [BLOCK // QB, QB])
        amax = tl.max(tl.abs(vb), axis=1)
        amax = tl.where(amax > 0, amax, 1.0)
        inv = tl.div_rn(tl.full([BLOCK // QB], 127.0, tl.float32), amax)
        q = tl.floor(vb * inv[:, None] + 0.5)
        q = tl.minimum(tl.maximum(q, -127.0), 127.0)
        tl.store(q_ptr + slots, tl.reshape(q, [BLOCK]).to(tl.int8), mask=mask)
        blk = tl.min(tl.reshape(slots, [BLOCK // QB, QB]), axis=1) // QB
        bmask = tl.max(tl.reshape(mask.to(tl.int32), [BLOCK // QB, QB]), axis=1) > 0
        tl.store(s_ptr + blk, tl.div_rn(amax, 127.0), mask=bmask)

    @triton.jit
    def _quant_a8_kernel(
        x_ptr, q_ptr, s_ptr, K, stride_xm, QB: tl.constexpr, CPW: tl.constexpr, PDL: tl.constexpr
    ):
        wait_for_producer(PDL)
        # One program per (row, block) of QB codes, written in the GEMV's byte order.
        row = tl.program_id(0)
        slots = tl.program_id(1) * QB + tl.arange(0, QB)
        x = tl.load(x_ptr + row * stride_xm + a8_source(slots, CPW))
        every = tl.full([QB], 1, tl.int1)
        a8_quantize_store(x, slots, every, q_ptr + row * K, s_ptr + row * (K // QB), QB, QB)

    @triton.jit
    def _dp4a(a, b, c, SIGNED_A: tl.constexpr, ASM: tl.constexpr):
        """c + sum over 4 bytes of a * b (b signed; a signed or unsigned), one instruction on the GPU."""
        if ASM:  # (one call per signedness: Triton takes the assembly text only as a literal)
            if SIGNED_A:
                out = tl.inline_asm_elementwise(
                    "dp4a.s32.s32 $0, $1, $2, $3;",
                    "=r,r,r,r",
                    [a, b, c],
                    dtype=tl.int32,
                    is_pure=True,
                    pack=1,
                )
            else:
                out = tl.inline_asm_elementwise(
                    "dp4a.u32.s32 $0, $1, $2, $3;",
                    "=r,r,r,r",
                    [a, b, c],
                    dtype=tl.int32,
                    is_pure=True,
                    pack=1,
                )
        else:  # the CPU interpreter has no inline assembly: the same sum byte by byte
            out = c
            for j in tl.static_range(4):
                if SIGNED_A:
                    aj = (a << (24 - 8 * j)) >> 24
                else:
                    aj = (a >> (8 * j)) & 0xFF
                out += aj * ((b << (24 - 8 * j)) >> 24)
        return out

    @triton.jit
    def _a8_kernel(
        xq_ptr,
        sx_ptr,
        w_ptr,
        s_ptr,
        m_ptr,
        y_ptr,
        ws_ptr,
        cnt_ptr,
        res_ptr,
        N,
        KW,
        WORDS_PER_SPLIT,
        stride_wn,
        stride_sn,
        BITS: tl.constexpr,
        OFFSET: tl.constexpr,
        SIGNED: tl.constexpr,
        HAS_MIN: tl.constexpr,
        PER_ROW: tl.constexpr,
        WORDS_PER_GROUP: tl.constexpr,
        WORDS_PER_QB: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_W: tl.constexpr,
        SPLIT_K: tl.constexpr,
        HAS_RES: tl.constexpr,
        QUAD: tl.constexpr,
        ASM: tl.constexpr,
        PREFETCH: tl.constexpr,
        PDL: tl.constexpr,
    ):
        # Launcher guarantees: N % BLOCK_N == 0, KW and WORDS_PER_SPLIT multiples of BLOCK_W (no masks).
        PL: tl.constexpr = 32 // BITS // 4  # byte planes per word
        MASK: tl.constexpr = ((1 << BITS) - 1) * 0x01010101 if BITS < 8 else -1
        pid_n = tl.program_id(0)
        w_lo = tl.program_id(1) * WORDS_PER_SPLIT
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        rows = w_ptr + offs_n[:, None] * stride_wn
        UNITS: tl.constexpr = BLOCK_W // 4 if QUAD else BLOCK_W
        acc = tl.zeros([BLOCK_N, UNITS], dtype=tl.float32)
        xsum = tl.zeros([UNITS], dtype=tl.float32)
        ones = tl.full([BLOCK_W], 0x01010101, tl.int32)
        w_hi = tl.minimum(w_lo + WORDS_PER_SPLIT, KW)
        # With PREFETCH the next tile's words are requested before this one is multiplied (Triton
        # pipelines only loads that feed a dot); the last step re-reads its own tile instead of
        # masking, so every load stays an unmasked 16-byte vector. Weights are constants: the first
        # tile may be requested before the wait for the producer of x.
        if PREFETCH:
            u_next = tl.load(rows + (w_lo + tl.arange(0, BLOCK_W))[None, :])
        wait_for_producer(PDL)
        res = load_residual(res_ptr, offs_n, offs_n < N, HAS_RES)
        for w0 in range(w_lo, w_hi, BLOCK_W):
            ww = w0 + tl.arange(0, BLOCK_W)
            if PREFETCH:
                u = u_next
                nxt = tl.minimum(w0 + BLOCK_W, w_hi - BLOCK_W)
                u_next = tl.load(rows + (nxt + tl.arange(0, BLOCK_W))[None, :])
            else:
                u = tl.load(rows + ww[None, :])
            dp = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.int32)
            xs = tl.zeros([BLOCK_W], dtype=tl.int32)
            for p in tl.static_range(PL):
                xw = tl.load(xq_ptr + ww * PL + p)
                if BITS == 8:
                    c = u
                elif p == 0:
                    c = u & MASK
                else:
                    c = (u >> (BITS * p)) & MASK
                dp = _dp4a(c, tl.broadcast_to(xw[None, :], [BLOCK_N, BLOCK_W]), dp, SIGNED, ASM)
                if OFFSET != 0 or HAS_MIN:
                    xs = _dp4a(ones, xw, xs, True, ASM)  # sum of the four x codes
            if QUAD:
                # Sum the integer products of 4 neighbouring words (one scale group and x block) in the
                # thread before converting: one convert, one scale load and two FMAs per 4 words.
                dp = tl.sum(tl.reshape(dp, [BLOCK_N, BLOCK_W // 4, 4]), axis=2)
                xs = tl.sum(tl.reshape(xs, [BLOCK_W // 4, 4]), axis=1)
                unit = w0 // 4 + tl.arange(0, BLOCK_W // 4)
                sxw = tl.load(sx_ptr + unit // (WORDS_PER_QB // 4))
                gidx = unit // (WORDS_PER_GROUP // 4)
            else:
                sxw = tl.load(sx_ptr + ww // WORDS_PER_QB)
                gidx = ww // WORDS_PER_GROUP
            t = dp.to(tl.float32)
            xsf = xs.to(tl.float32) * sxw  # sum of this unit's dequantized x
            if PER_ROW:
                acc += t * sxw[None, :]
                xsum += xsf
            else:
                s = tl.load(s_ptr + offs_n[:, None] * stride_sn + gidx[None, :]).to(tl.float32)
                acc += (t * sxw[None, :] - OFFSET * xsf[None, :]) * s
                if HAS_MIN:
                    mn = tl.load(m_ptr + offs_n[:, None] * stride_sn + gidx[None, :])
                    acc += mn.to(tl.float32) * xsf[None, :]
        y = tl.sum(acc, axis=1)
        if PER_ROW:
            xt = tl.sum(xsum, axis=0)
            y = (y - OFFSET * xt) * tl.load(s_ptr + offs_n * stride_sn).to(tl.float32)
            if HAS_MIN:
                y += tl.load(m_ptr + offs_n * stride_sn).to(tl.float32) * xt
        store_output(y_ptr, ws_ptr, cnt_ptr, res, offs_n, offs_n < N, y, pid_n, SPLIT_K, HAS_RES)


def quantize_a8(x: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] -> (int8 codes [M, K] in the GEMV's byte order for `bits`-bit weights, fp32 scales)."""
    assert triton is not None, "Triton is not installed"
    m, k = x.shape
    qb = a8_block(k, bits)
    assert qb is not None and x.stride(1) == 1, f"x must be dense in K with K={k} a multiple of 16"
    out = new_quantized_x(m, k, bits, x.device)
    q, s = out.q, out.s
    _quant_a8_kernel[(m, k // qb)](
        x, q, s, k, x.stride(0), QB=qb, CPW=32 // bits, num_warps=1, **launch_kwargs(x)
    )
    return q, s


@dataclass(frozen=True)
class A8Config:
    """Launch shape of the int8-activation GEMV."""

    block_n: int
    block_w: int
    """int32 words of a row per loop step."""
    num_warps: int = 4
    split_k: int = 1
    prefetch: bool = False
    """Request the next tile of words before multiplying this one (two tiles in flight per program)."""


def a8_fits(pw: PackedWeight, config: A8Config) -> bool:
    """Whether the launch shape tiles the weight without masks (N by block_n, each row's words by block_w)."""
    kw = pw.k * A8_BITS[pw.fmt] // 32
    return pw.n % config.block_n == 0 and kw % config.block_w == 0


def a8_default_config(pw: PackedWeight) -> A8Config:
    """A launch shape valid for every supported weight (one word column per step, 8 rows)."""
    return A8Config(8 if pw.n % 8 == 0 else 1, 4 if (pw.k * A8_BITS[pw.fmt] // 32) % 4 == 0 else 1, 1)


def a8_candidates(pw: PackedWeight) -> list[A8Config]:
    """Launch shapes worth timing for this weight, all with the prefetch (it won 11 of 12 Llama shapes).

    Split-K goes to 16: a narrow layer (N = 4096) tiled 64 rows high is only 64 programs, too few
    loads in flight per SM to reach DRAM bandwidth at one row.
    """
    kw = pw.k * A8_BITS[pw.fmt] // 32
    return [
        A8Config(bn, bw, 4, sk, True)
        for bn in (16, 32, 64, 128)
        for bw in (16, 32, 64)
        for sk in (1, 2, 4, 8, 16)
        if bn * bw >= 512 and (pw.n // bn) * sk <= 16 * 132 and kw // sk >= bw
    ]


def gemv_a8(
    x: torch.Tensor,
    pw: PackedWeight,
    config: A8Config | None = None,
    residual: torch.Tensor | None = None,
    quantized: QuantizedX | None = None,
) -> torch.Tensor:
    """y [1, N] (+ residual) = int8(x [1, K]) @ W^T: quantizes x per block, then one dp4a per four codes.

    `quantized` is x already quantized by its producer kernel (x itself is then only checked).
    """
    assert triton is not None, "Triton is not installed"
    assert a8_supported(pw), f"the int8-activation GEMV does not take {pw.fmt} with K={pw.k}"
    assert x.dim() == 2 and x.shape == (1, pw.k) and x.is_contiguous(), f"x must be [1, {pw.k}], contiguous"
    check_residual(residual, (1, pw.n), x.dtype)
    config = config or a8_default_config(pw)
    bits = A8_BITS[pw.fmt]
    kw = pw.k * bits // 32
    assert a8_fits(pw, config), f"{config} does not tile a {pw.n} x {kw}-word weight"
    y, grid, per_split, ws, cnt = one_row_launch(x, pw.n, kw, config.block_n, config.block_w, config.split_k)
    if quantized is None:
        xq, sx = quantize_a8(x, bits)
    else:
        assert quantized.bits == bits and quantized.q.shape == (1, pw.k), (
            f"x was quantized for {quantized.bits}-bit weights [{tuple(quantized.q.shape)}], not {pw.fmt} K={pw.k}"
        )
        xq, sx = quantized.q, quantized.s
    words = pw.units.view(torch.uint8).view(torch.int32)
    per_row = pw.scale_mode in (0, 1)
    cpw = 32 // bits
    wpg = 4 if per_row else pw.group_size // cpw
    wpqb = a8_block(pw.k, bits) // cpw
    _a8_kernel[grid](
        xq.view(torch.int32),
        sx,
        words,
        pw.scales,
        pw.mins if pw.mins is not None else pw.scales,
        y,
        ws,
        cnt,
        residual if residual is not None else y,
        pw.n,
        kw,
        per_split,
        words.stride(0),
        pw.stride_sn,
        BITS=bits,
        OFFSET=0.0 if pw.fmt == "int8" else float(pw.offset),
        SIGNED=pw.fmt == "int8",
        HAS_MIN=pw.mins is not None,
        PER_ROW=per_row,
        WORDS_PER_GROUP=wpg,
        WORDS_PER_QB=wpqb,
        BLOCK_N=config.block_n,
        BLOCK_W=config.block_w,
        SPLIT_K=grid[1],
        HAS_RES=residual is not None,
        QUAD=config.block_w % 4 == 0 and wpqb % 4 == 0 and (per_row or wpg % 4 == 0),
        ASM=not INTERPRET,
        PREFETCH=config.prefetch,
        num_warps=config.num_warps,
        **launch_kwargs(x),
    )
    return y
