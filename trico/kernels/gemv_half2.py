"""GEMV of one to four rows for 4- and 2-bit weights in packed half-precision math: two weights per instruction.

The word GEMV (`gemv.py`) spends a shift, a LOP3 and an fp32 FMA per weight, and Triton moves each
x column through shared memory to the layout of the weight tile (sm_90 SASS: ~5.2 instructions per
int4 code). Here the codes of a word meet x in f16x2 registers, as in llama.cpp's and exllama's CUDA
GEMVs, with one more trick: a code masked in place in the low 10 bits of a 16-bit half *is* an fp16
subnormal, c * 2^(shift - 24), exactly. So per two codes:

    t = u & (MASK << B*q in both halves)                 one LOP3, no magic constant to OR in
    t = t * 2^(15 - B*q) - offset * 2^-9                 one HFMA2: (c - offset) * 2^-9, exact
    acc = t * x2 + acc                                   one HFMA2: the products are exact

With two rows of x the unpacked t meets both rows' pairs (one more HFMA2 per pair), so unpacking is paid
once for both; four rows run that twice (dispatch sends only up to two rows here: `dispatch.HALF2_ROWS`).

Codes above bit 10 of a half are shifted down first (one shift per word). x2 holds the pair
(x[q], x[q + CPW/2]) as fp16 (exact for bf16 x between 2^-14 and 65504 in magnitude: bf16 has fewer
mantissa bits), so products are (c - offset) * x * 2^-9, exact unless they fall below fp16's normal
range (|(c - offset) x| < 2^-5; then within 2^-25). A unit of 32 codes per row (4 int4 words, 2 words
of 2-bit codes) is summed in the two fp16 lanes (at most |x| / 4 in magnitude, so no overflow), then
the lanes are added in fp32 and scaled there: fp16 rounding reaches only the sum of 16 products per
lane, relative error ~2^-11 of the unit's partial sum, below the bf16 rounding of the output.

x is read by inline PTX (`ld.global.nc`) straight into the layout of the weight tile's columns (the
word GEMV's Triton loads of x are converted through shared memory on every step; the loop here has
no barrier in its sm_90 SASS). The same PTX pairs and converts the values (bf16 -> fp32 -> f16x2) once per column and thread,
shared by every row the thread holds. Under `TRITON_INTERPRET=1` the math runs as Triton tensor ops
(fp16 arithmetic, emulated); the PTX itself is checked by an emulator in the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trico.kernels.epilogue import check_residual, gate_rows_ok, one_row_launch
from trico.kernels.pdl import launch_kwargs, wait_for_producer
from trico.kernels.qlinear import INTERPRET, PackedWeight, half_bits, triton

if triton is not None:
    import triton.language as tl

    from trico.kernels.epilogue import load_residual, store_output, tile_rows

HALF2_BITS = {"uint4": 4, "uint2": 2, "tern2": 2}
"""Formats this kernel reads, with their bits per code."""

if triton is not None:
    OUT_SCALE = tl.constexpr(2.0**9)
    """What undoes the scaling of the codes ((c - offset) * 2^-9) in the fp32 result."""

UNIT_CODES = 32
"""Codes of a row summed in one f16x2 accumulator before it is converted (4 int4 / 2 int2 words)."""


def half2_supported(pw: PackedWeight, dtype: torch.dtype = torch.bfloat16) -> bool:
    """Whether this kernel reads the weight: 4/2-bit codes without mins, scale groups of whole 4-word quads."""
    if pw.fmt not in HALF2_BITS or pw.mins is not None or dtype not in (torch.bfloat16, torch.float16):
        return False
    quad = 4 * (32 // HALF2_BITS[pw.fmt])
    per_row = pw.scale_mode in (0, 1)
    return pw.k % quad == 0 and (per_row or pw.group_size % quad == 0)


def x_pairs_asm(bits: int, fp16: bool) -> tuple[str, str]:
    """PTX loading one word's x values (address $P) and returning its P = CPW/2 f16x2 pairs (x[q], x[q + P])."""
    cpw = 32 // bits
    planes = cpw // 2
    lines = [f"{{ .reg .b32 a<{cpw // 2}>, f<2>;"]
    for i in range(cpw // 8):  # 16-byte loads of 8 values
        regs = ",".join(f"a{4 * i + j}" for j in range(4))
        lines.append(f"ld.global.nc.v4.b32 {{{regs}}}, [${planes} + {16 * i}];")
    for q in range(planes):
        lo, hi = q, q + planes  # x[j] is half j % 2 of a[j // 2]
        if fp16:
            sel_lo, sel_hi = (lo % 2) * 2, 4 + (hi % 2) * 2
            sel = sel_lo | (sel_lo + 1) << 4 | sel_hi << 8 | (sel_hi + 1) << 12
            lines.append(f"prmt.b32 ${q}, a{lo // 2}, a{hi // 2}, 0x{sel:04X};")
        else:  # bf16 -> fp32 bits (a high half masked, a low half shifted up), then one cvt per pair
            for j, reg in ((lo, "f0"), (hi, "f1")):
                op = "and.b32 {r}, a{a}, 0xFFFF0000;" if j % 2 else "shl.b32 {r}, a{a}, 16;"
                lines.append(op.format(r=reg, a=j // 2))
            lines.append(f"cvt.rn.f16x2.f32 ${q}, f1, f0;")
    lines.append("}")
    return "\n".join(lines), ",".join(["=r"] * planes + ["l"])


def unit_dot_asm(bits: int, offset: int, rows: int = 1) -> tuple[str, str]:
    """PTX of one unit's sums of (c - offset) * x * 2^-9 in fp32 for `rows` rows of x (see the module docstring).

    Each code pair is unpacked once and multiplied with every row's x pair. Outputs $0..$(rows - 1);
    inputs: the unit's W words, then row r's pair q of word w at $(rows + W + (r * W + w) * P + q).
    """
    words, planes = UNIT_CODES // (32 // bits), 16 // bits
    direct = 10 // bits  # planes whose codes sit wholly in the mantissa bits of a half
    mask = (1 << bits) - 1
    exps = sorted({15 - bits * (q if q < direct else q - direct) for q in range(planes)})
    accs = [f"acc{r}" for r in range(rows)]
    lines = [
        "{ .reg .b32 t, s, nb, "
        + ", ".join(accs + [f"m{e}" for e in exps])
        + "; .reg .b16 l, h; .reg .f32 fl, fh;",
        f"mov.b32 nb, 0x{half_bits(-offset * 2.0**-9) * 0x10001:08X};",
    ]
    lines += [f"mov.b32 m{e}, 0x{half_bits(2.0**e) * 0x10001:08X};" for e in exps]
    first = True
    for w in range(words):
        for q in range(planes):
            src, pos = (f"${rows + w}", q) if q < direct else ("s", q - direct)
            if q == direct:
                lines.append(f"shr.u32 s, ${rows + w}, {bits * direct};")
            lines.append(f"and.b32 t, {src}, 0x{(mask << (bits * pos)) * 0x10001:08X};")
            lines.append(f"fma.rn.f16x2 t, t, m{15 - bits * pos}, nb;")
            for r, acc in enumerate(accs):
                x = f"${rows + words + (r * words + w) * planes + q}"
                lines.append(
                    f"mul.rn.f16x2 {acc}, t, {x};" if first else f"fma.rn.f16x2 {acc}, t, {x}, {acc};"
                )
            first = False
    for r, acc in enumerate(accs):
        lines.append(f"mov.b32 {{l, h}}, {acc}; cvt.f32.f16 fl, l; cvt.f32.f16 fh, h; add.f32 ${r}, fl, fh;")
    lines.append("}")
    return "\n".join(lines), ",".join(["=f"] * rows + ["r"] * (words + rows * words * planes))


if triton is not None:

    @triton.jit
    def _halves(t, RANK: tl.constexpr):
        """Elements 2j and 2j + 1 of the last axis of t (rank 1 or 2) as two tensors (in-thread: no data moves)."""
        if RANK == 1:
            r = tl.reshape(t, [t.shape[0] // 2, 2])
        else:
            r = tl.reshape(t, [t.shape[0], t.shape[1] // 2, 2])
        return tl.split(r)

    @triton.jit
    def _quarters(t, RANK: tl.constexpr):
        """t [..., BW] -> 4 tensors [..., BW / 4]: word i of every unit of 4 words."""
        a, b = _halves(t, RANK)
        a0, a1 = _halves(a, RANK)  # words 4j, 4j + 2
        b0, b1 = _halves(b, RANK)  # words 4j + 1, 4j + 3
        return a0, b0, a1, b1

    @triton.jit
    def _x_pair(x_ptr, ww, q: tl.constexpr, CPW: tl.constexpr):
        """Interpreter form of pair q of `x_pairs_asm`: (x[CPW w + q], x[CPW w + q + CPW/2]) as fp16."""
        lo = tl.load(x_ptr + ww * CPW + q).to(tl.float16)
        hi = tl.load(x_ptr + ww * CPW + q + CPW // 2).to(tl.float16)
        return lo, hi

    @triton.jit
    def _emulated_unit_dots(u, x_ptr, ww, BITS: tl.constexpr, OFFSET: tl.constexpr, BLOCK_N: tl.constexpr,
                            BLOCK_W: tl.constexpr):  # fmt: skip
        """Interpreter form of `unit_dot_asm` over a tile: fp16 lanes summed per unit, [BN, BW / unit words] fp32."""
        CPW: tl.constexpr = 32 // BITS
        WORDS: tl.constexpr = 32 // CPW
        MASK: tl.constexpr = (1 << BITS) - 1
        lo_acc = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float16)
        hi_acc = tl.zeros([BLOCK_N, BLOCK_W], dtype=tl.float16)
        for q in tl.static_range(CPW // 2):
            x_lo, x_hi = _x_pair(x_ptr, ww, q, CPW)
            c_lo = (((u >> (BITS * q)) & MASK).to(tl.float32) - OFFSET).to(tl.float16) * 0.001953125
            c_hi = (((u >> (BITS * q + 16)) & MASK).to(tl.float32) - OFFSET).to(tl.float16) * 0.001953125
            lo_acc = (lo_acc + (c_lo * x_lo[None, :]).to(tl.float16)).to(tl.float16)
            hi_acc = (hi_acc + (c_hi * x_hi[None, :]).to(tl.float16)).to(tl.float16)
        # sums per word; a unit's lanes then add up in fp16 too (the GPU's order differs, not its precision)
        lo = tl.sum(tl.reshape(lo_acc.to(tl.float32), [BLOCK_N, BLOCK_W // WORDS, WORDS]), axis=2)
        hi = tl.sum(tl.reshape(hi_acc.to(tl.float32), [BLOCK_N, BLOCK_W // WORDS, WORDS]), axis=2)
        return lo.to(tl.float16).to(tl.float32) + hi.to(tl.float16).to(tl.float32)

    @triton.jit
    def _x_row4(addr, X_ASM: tl.constexpr, X_CONS: tl.constexpr):
        """One row's x pairs for the int4 unit dot, in its input order (word-major), as [1, BW / 4] tensors."""
        p0, p1, p2, p3 = tl.inline_asm_elementwise(X_ASM, X_CONS, [addr], dtype=(tl.int32,) * 4, is_pure=True,
                                                   pack=1)  # fmt: skip
        a0, a1, a2, a3 = _quarters(p0, 1)
        b0, b1, b2, b3 = _quarters(p1, 1)
        c0, c1, c2, c3 = _quarters(p2, 1)
        d0, d1, d2, d3 = _quarters(p3, 1)
        return (a0[None, :], b0[None, :], c0[None, :], d0[None, :], a1[None, :], b1[None, :], c1[None, :],
                d1[None, :], a2[None, :], b2[None, :], c2[None, :], d2[None, :], a3[None, :], b3[None, :],
                c3[None, :], d3[None, :])  # fmt: skip

    @triton.jit
    def _x_row2(addr, X_ASM: tl.constexpr, X_CONS: tl.constexpr):
        """One row's x pairs for the 2-bit unit dot, in its input order (word-major), as [1, BW / 2] tensors."""
        p0, p1, p2, p3, p4, p5, p6, p7 = tl.inline_asm_elementwise(X_ASM, X_CONS, [addr], dtype=(tl.int32,) * 8,
                                                                   is_pure=True, pack=1)  # fmt: skip
        a0, a1 = _halves(p0, 1)
        b0, b1 = _halves(p1, 1)
        c0, c1 = _halves(p2, 1)
        d0, d1 = _halves(p3, 1)
        e0, e1 = _halves(p4, 1)
        f0, f1 = _halves(p5, 1)
        g0, g1 = _halves(p6, 1)
        h0, h1 = _halves(p7, 1)
        return (a0[None, :], b0[None, :], c0[None, :], d0[None, :], e0[None, :], f0[None, :], g0[None, :],
                h0[None, :], a1[None, :], b1[None, :], c1[None, :], d1[None, :], e1[None, :], f1[None, :],
                g1[None, :], h1[None, :])  # fmt: skip

    @triton.jit
    def _x_row(addr, X_ASM: tl.constexpr, X_CONS: tl.constexpr, BITS: tl.constexpr):
        """One row's 16 x-pair inputs of the unit dot."""
        if BITS == 4:
            return _x_row4(addr, X_ASM, X_CONS)
        else:
            return _x_row2(addr, X_ASM, X_CONS)

    @triton.jit
    def _words(u, BITS: tl.constexpr):
        """The unit dot's word inputs: 4 int4 words or 2 words of 2-bit codes per unit, [BN, BW / unit words] each."""
        if BITS == 4:
            u0, u1, u2, u3 = _quarters(u, 2)
        else:
            u0, u1 = _halves(u, 2)
            u2, u3 = u0, u1  # unused
        return u0, u1, u2, u3

    @triton.jit
    def _dot1(u, xr, DOT_ASM: tl.constexpr, DOT_CONS: tl.constexpr, BITS: tl.constexpr):
        """`unit_dot_asm` for one row: u from `_words`, xr from `_x_row`."""
        u0, u1, u2, u3 = u
        x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 = xr
        if BITS == 4:
            out = tl.inline_asm_elementwise(
                DOT_ASM, DOT_CONS,
                [u0, u1, u2, u3,
                 x0, x1, x2, x3, x4, x5, x6, x7,
                 x8, x9, x10, x11, x12, x13, x14, x15],
                dtype=tl.float32, is_pure=True, pack=1,
            )  # fmt: skip
        else:
            out = tl.inline_asm_elementwise(
                DOT_ASM, DOT_CONS,
                [u0, u1,
                 x0, x1, x2, x3, x4, x5, x6, x7,
                 x8, x9, x10, x11, x12, x13, x14, x15],
                dtype=tl.float32, is_pure=True, pack=1,
            )  # fmt: skip
        return out

    @triton.jit
    def _dot2(u, xr, yr, DOT_ASM: tl.constexpr, DOT_CONS: tl.constexpr, BITS: tl.constexpr):
        """`unit_dot_asm` for two rows: each code pair unpacked once, multiplied with both rows' x pairs."""
        u0, u1, u2, u3 = u
        x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 = xr
        y0, y1, y2, y3, y4, y5, y6, y7, y8, y9, y10, y11, y12, y13, y14, y15 = yr
        if BITS == 4:
            o0, o1 = tl.inline_asm_elementwise(
                DOT_ASM, DOT_CONS,
                [u0, u1, u2, u3,
                 x0, x1, x2, x3, x4, x5, x6, x7,
                 x8, x9, x10, x11, x12, x13, x14, x15,
                 y0, y1, y2, y3, y4, y5, y6, y7,
                 y8, y9, y10, y11, y12, y13, y14, y15],
                dtype=(tl.float32,) * 2, is_pure=True, pack=1,
            )  # fmt: skip
        else:
            o0, o1 = tl.inline_asm_elementwise(
                DOT_ASM, DOT_CONS,
                [u0, u1,
                 x0, x1, x2, x3, x4, x5, x6, x7,
                 x8, x9, x10, x11, x12, x13, x14, x15,
                 y0, y1, y2, y3, y4, y5, y6, y7,
                 y8, y9, y10, y11, y12, y13, y14, y15],
                dtype=(tl.float32,) * 2, is_pure=True, pack=1,
            )  # fmt: skip
        return o0, o1

    @triton.jit
    def _unit_dots(u, x_addr, row_bytes, last_row, ww, X_ASM: tl.constexpr, X_CONS: tl.constexpr,
                   DOT_ASM: tl.constexpr, DOT_CONS: tl.constexpr, DOT2_ASM: tl.constexpr, DOT2_CONS: tl.constexpr,
                   BITS: tl.constexpr, ROWS: tl.constexpr):  # fmt: skip
        """`unit_dot_asm` over a tile of words u [BN, BW] for ROWS rows of x (1, 2 or 4; rows past the last
        repeat it): four [BN, BW / unit words] fp32 unit sums (the ones past ROWS are unused copies)."""
        addr = x_addr + ww.to(tl.int64) * (64 // BITS)
        words = _words(u, BITS)
        if ROWS == 1:
            o0 = _dot1(words, _x_row(addr, X_ASM, X_CONS, BITS), DOT_ASM, DOT_CONS, BITS)
            o1, o2, o3 = o0, o0, o0
        else:
            r1 = tl.minimum(1, last_row).to(tl.int64) * row_bytes
            o0, o1 = _dot2(words, _x_row(addr, X_ASM, X_CONS, BITS), _x_row(addr + r1, X_ASM, X_CONS, BITS),
                           DOT2_ASM, DOT2_CONS, BITS)  # fmt: skip
            if ROWS == 4:
                r2 = tl.minimum(2, last_row).to(tl.int64) * row_bytes
                r3 = tl.minimum(3, last_row).to(tl.int64) * row_bytes
                o2, o3 = _dot2(words, _x_row(addr + r2, X_ASM, X_CONS, BITS),
                               _x_row(addr + r3, X_ASM, X_CONS, BITS), DOT2_ASM, DOT2_CONS, BITS)  # fmt: skip
            else:
                o2, o3 = o0, o1
        return o0, o1, o2, o3

    @triton.jit
    def _quad_sums(units, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr, BITS: tl.constexpr):
        """Unit sums [BN, BW / unit words] -> sums per 4-word quad [BN, BW / 4] (a 2-bit unit is 2 words)."""
        if BITS == 4:
            return units
        else:
            return tl.sum(tl.reshape(units, [BLOCK_N, BLOCK_W // 4, 2]), axis=2)

    @triton.jit
    def _row_result(acc, s_ptr, offs_n, stride_sn, PER_ROW: tl.constexpr):
        """One x row's outputs [BN] from its accumulator (the per-row scale applied once here)."""
        y = tl.sum(acc, axis=1) * OUT_SCALE
        if PER_ROW:
            y = y * tl.load(s_ptr + offs_n * stride_sn).to(tl.float32)
        return y

    @triton.jit
    def _half2_kernel(
        x_ptr,
        x_addr,
        w_ptr,
        s_ptr,
        y_ptr,
        ws_ptr,
        cnt_ptr,
        res_ptr,
        M,
        N,
        KW,
        WORDS_PER_SPLIT,
        stride_xm,
        stride_wn,
        stride_sn,
        BITS: tl.constexpr,
        OFFSET: tl.constexpr,
        PER_ROW: tl.constexpr,
        QUADS_PER_GROUP: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_W: tl.constexpr,
        ROWS: tl.constexpr,
        SPLIT_K: tl.constexpr,
        HAS_RES: tl.constexpr,
        X_ASM: tl.constexpr,
        X_CONS: tl.constexpr,
        DOT_ASM: tl.constexpr,
        DOT_CONS: tl.constexpr,
        DOT2_ASM: tl.constexpr,
        DOT2_CONS: tl.constexpr,
        PDL: tl.constexpr,
        GATE: tl.constexpr,
    ):
        # Launcher guarantees: N % BLOCK_N == 0, WORDS_PER_SPLIT a multiple of BLOCK_W (no masks), and
        # scale groups of whole 4-word quads. ROWS (1, 2 or 4) rows of x share every unpacked code;
        # rows from M to ROWS re-read the last row and are not stored. With GATE y is [M, N / 2].
        pid_n = tl.program_id(0)
        w_lo = tl.program_id(1) * WORDS_PER_SPLIT
        w_hi = tl.minimum(w_lo + WORDS_PER_SPLIT, KW)
        offs_n = tile_rows(pid_n, N, BLOCK_N, GATE)
        rows = w_ptr + offs_n[:, None] * stride_wn
        acc0 = tl.zeros([BLOCK_N, BLOCK_W // 4], dtype=tl.float32)
        acc1 = tl.zeros([BLOCK_N, BLOCK_W // 4], dtype=tl.float32)
        acc2 = tl.zeros([BLOCK_N, BLOCK_W // 4], dtype=tl.float32)
        acc3 = tl.zeros([BLOCK_N, BLOCK_W // 4], dtype=tl.float32)
        # The next tile's words are requested before this one is multiplied; the last step re-reads
        # its own tile instead of masking. Weights are constants: the first tile may be requested
        # before waiting for the kernel that writes x.
        u_next = tl.load(rows + (w_lo + tl.arange(0, BLOCK_W))[None, :])
        wait_for_producer(PDL)
        r = tl.arange(0, ROWS)
        if ROWS == 1:
            offs, mask = offs_n, offs_n < N
        else:  # [BN, ROWS]: column r is row r (with GATE the epilogue takes rows first: no residual there)
            offs = offs_n[:, None] + (r * N)[None, :]
            mask = (offs_n < N)[:, None] & (r < M)[None, :]
        res = load_residual(res_ptr, offs, mask, HAS_RES)
        for w0 in range(w_lo, w_hi, BLOCK_W):
            ww = w0 + tl.arange(0, BLOCK_W)
            u = u_next
            nxt = tl.minimum(w0 + BLOCK_W, w_hi - BLOCK_W)
            u_next = tl.load(rows + (nxt + tl.arange(0, BLOCK_W))[None, :])
            if DOT_ASM != "":
                o0, o1, o2, o3 = _unit_dots(u, x_addr, stride_xm * 2, M - 1, ww, X_ASM, X_CONS, DOT_ASM, DOT_CONS,
                                            DOT2_ASM, DOT2_CONS, BITS, ROWS)  # fmt: skip
            else:
                o0 = _emulated_unit_dots(u, x_ptr, ww, BITS, OFFSET, BLOCK_N, BLOCK_W)
                o1, o2, o3 = o0, o0, o0
                if ROWS > 1:
                    o1 = _emulated_unit_dots(u, x_ptr + tl.minimum(1, M - 1) * stride_xm, ww, BITS, OFFSET,
                                             BLOCK_N, BLOCK_W)  # fmt: skip
                if ROWS > 2:
                    o2 = _emulated_unit_dots(u, x_ptr + tl.minimum(2, M - 1) * stride_xm, ww, BITS, OFFSET,
                                             BLOCK_N, BLOCK_W)  # fmt: skip
                    o3 = _emulated_unit_dots(u, x_ptr + tl.minimum(3, M - 1) * stride_xm, ww, BITS, OFFSET,
                                             BLOCK_N, BLOCK_W)  # fmt: skip
            if PER_ROW:
                scale = 1.0
            else:
                unit = w0 // 4 + tl.arange(0, BLOCK_W // 4)
                s = tl.load(s_ptr + offs_n[:, None] * stride_sn + (unit // QUADS_PER_GROUP)[None, :])
                scale = s.to(tl.float32)
            acc0 += _quad_sums(o0, BLOCK_N, BLOCK_W, BITS) * scale
            if ROWS > 1:
                acc1 += _quad_sums(o1, BLOCK_N, BLOCK_W, BITS) * scale
            if ROWS > 2:
                acc2 += _quad_sums(o2, BLOCK_N, BLOCK_W, BITS) * scale
                acc3 += _quad_sums(o3, BLOCK_N, BLOCK_W, BITS) * scale
        y0 = _row_result(acc0, s_ptr, offs_n, stride_sn, PER_ROW)
        cols = pid_n * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)  # GATE: the outputs of this tile
        if ROWS == 1:
            store_output(y_ptr, ws_ptr, cnt_ptr, res, offs, mask, y0, pid_n, SPLIT_K, HAS_RES, GATE, cols,
                         cols < N // 2)  # fmt: skip
        else:
            y1 = _row_result(acc1, s_ptr, offs_n, stride_sn, PER_ROW)
            if ROWS == 2:
                y = tl.join(y0, y1)  # [BN, 2]: column r is row r
            else:
                y2 = _row_result(acc2, s_ptr, offs_n, stride_sn, PER_ROW)
                y3 = _row_result(acc3, s_ptr, offs_n, stride_sn, PER_ROW)
                y = tl.reshape(tl.join(tl.join(y0, y2), tl.join(y1, y3)), [BLOCK_N, 4])  # column r is row r
            if GATE:  # rows first: gate and up rows pair along the last axis
                y = tl.trans(y)
                offs = (r * N)[:, None] + offs_n[None, :]
                mask = (r < M)[:, None] & (offs_n < N)[None, :]
            gate_offs = (r * (N // 2))[:, None] + cols[None, :]
            store_output(y_ptr, ws_ptr, cnt_ptr, res, offs, mask, y, pid_n, SPLIT_K, HAS_RES, 2 * GATE,
                         gate_offs, (r < M)[:, None] & (cols < N // 2)[None, :])  # fmt: skip


@dataclass(frozen=True)
class Half2Config:
    """Launch shape of the half2 GEMV."""

    block_n: int
    block_w: int
    """int32 words of a row per loop step (a multiple of 4)."""
    num_warps: int = 4
    split_k: int = 1


def half2_fits(pw: PackedWeight, config: Half2Config) -> bool:
    """Whether the launch shape tiles the weight without masks."""
    kw = pw.k * HALF2_BITS[pw.fmt] // 32
    return pw.n % config.block_n == 0 and kw % config.block_w == 0 and config.block_w % 4 == 0


def half2_default_config(pw: PackedWeight) -> Half2Config:
    """A launch shape valid for every supported weight."""
    return Half2Config(8 if pw.n % 8 == 0 else 1, 4, 1)


def half2_candidates(pw: PackedWeight) -> list[Half2Config]:
    """Launch shapes worth timing: 4-16 rows per thread in tiles of 64-256 rows, split-K around ~512 programs
    (half, three quarters, once and twice the split that fills 512)."""
    kw = pw.k * HALF2_BITS[pw.fmt] // 32
    out = []
    for bn, bw in ((64, 32), (128, 16), (128, 32), (256, 16), (64, 64), (256, 32)):
        split = 1
        while (pw.n // bn) * split * 2 <= 512 and kw // (split * 2) >= 2 * bw and split < 16:
            split *= 2
        for sk in sorted({max(1, split // 2), max(1, 3 * split // 4), split, 2 * split}):
            cfg = Half2Config(bn, bw, 4, sk)
            if half2_fits(pw, cfg) and kw // sk >= bw:
                out.append(cfg)
    return out


def half2_aligned(x: torch.Tensor) -> bool:
    """Whether every row of x [M, K] starts on a 16-byte boundary (x is read by 16-byte PTX loads)."""
    return x.data_ptr() % 16 == 0 and (x.shape[0] == 1 or x.stride(0) * x.element_size() % 16 == 0)


MAX_ROWS = 4
"""Rows of x one launch takes (1, 2 or 4 at a time in the kernel; 3 runs as 4 with the last row repeated)."""


def gemv_half2(
    x: torch.Tensor,
    pw: PackedWeight,
    config: Half2Config | None = None,
    residual: torch.Tensor | None = None,
    gate: bool = False,
) -> torch.Tensor:
    """y [M, N] (+ residual) = x [M, K] @ W^T (M <= 4) for a 4- or 2-bit word-packed weight, two codes per f16x2 FMA.

    With `gate` W is a fused [gate; up] projection and y [M, N / 2] is silu(x @ gate^T) * (x @ up^T).
    """
    assert triton is not None, "Triton is not installed"
    assert half2_supported(pw, x.dtype), f"the half2 GEMV does not take {pw.fmt} with K={pw.k} ({x.dtype})"
    m = x.shape[0] if x.dim() == 2 else 0
    assert 1 <= m <= MAX_ROWS and x.shape[1] == pw.k and x.stride(1) == 1, (
        f"x must be [M, {pw.k}] with M <= {MAX_ROWS}, dense rows"
    )
    assert half2_aligned(x), (
        "x's rows must start on 16-byte boundaries (the kernel loads them 16 bytes at a time)"
    )
    check_residual(residual, (m, pw.n), x.dtype)
    config = config or half2_default_config(pw)
    assert half2_fits(pw, config), f"{config} does not tile {pw.fmt} [{pw.n}, {pw.k}]"
    assert not gate or (residual is None and gate_rows_ok(pw.n, config.block_n)), (
        f"the gate needs {config.block_n // 2}-row halves of [{pw.n}, {pw.k}] and no residual"
    )
    bits = HALF2_BITS[pw.fmt]
    kw = pw.k * bits // 32
    rows = 1 if m == 1 else 2 if m == 2 else 4
    y, grid, per_split, ws, cnt = one_row_launch(
        x, pw.n, kw, config.block_n, config.block_w, config.split_k, gate
    )
    words = pw.units.view(torch.uint8).view(torch.int32)
    per_row = pw.scale_mode in (0, 1)
    x_asm, x_cons = ("", "") if INTERPRET else x_pairs_asm(bits, x.dtype == torch.float16)
    dot_asm, dot_cons = ("", "") if INTERPRET else unit_dot_asm(bits, pw.offset)
    dot2_asm, dot2_cons = ("", "") if INTERPRET or rows == 1 else unit_dot_asm(bits, pw.offset, 2)
    _half2_kernel[grid](
        x,
        x.data_ptr(),
        words,
        pw.scales,
        y,
        ws,
        cnt,
        residual if residual is not None else y,
        m,
        pw.n,
        kw,
        per_split,
        x.stride(0),
        words.stride(0),
        pw.stride_sn,
        BITS=bits,
        OFFSET=float(pw.offset),
        PER_ROW=per_row,
        QUADS_PER_GROUP=1 if per_row else pw.group_size // (4 * (32 // bits)),
        BLOCK_N=config.block_n,
        BLOCK_W=config.block_w,
        ROWS=rows,
        SPLIT_K=grid[1],
        HAS_RES=residual is not None,
        X_ASM=x_asm,
        X_CONS=x_cons,
        DOT_ASM=dot_asm,
        DOT_CONS=dot_cons,
        DOT2_ASM=dot2_asm,
        DOT2_CONS=dot2_cons,
        GATE=gate,
        num_warps=config.num_warps,
        **launch_kwargs(x),
    )
    return y
