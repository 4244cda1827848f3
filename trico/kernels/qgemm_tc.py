"""Skinny GEMM y = x @ W^T on the tensor cores for byte-aligned weight formats (decode, M = 1..64).

Why a second decode kernel next to `qlinear.qmm`: that one unpacks codes to fp32 and multiplies with
FMAs, 4-5 ALU instructions per weight and one FMA per row of x, so past M = 1 it collapses
(benchmarks/results/gemv-variants-h100.json). Here the tensor cores do the multiplications and a
weight costs a few integer instructions:

- codes become fp16/bf16 numbers with the exponent trick: a code c OR-ed into the mantissa of
  1024.0 (fp16 0x6400) or 128.0 (bf16 0x4300) *is* the float MAGIC + c, so no conversion runs;
- every weight then has MAGIC + offset subtracted in 16-bit float (exact: small integers), so the
  dot sums x * (c - offset) directly; grouped weights scale the [M, N] partial product once per
  group, one scale per row scales once at the end; asymmetric weights add min * sum x. (Taking
  (MAGIC + offset) * sum x out after the loop instead saves that subtraction but cancels: fp32
  loses ~2^-24 * MAGIC * sum|x|, which on SmolLM2's outlier channels moved 5% of an int8 layer's
  bf16 outputs, some by thousands of ulps, against the fp32 reference.)

On the GPU the unpacking is a few lines of PTX per 32-bit register of packed bytes (`unpack_asm`):
PRMT spreads bytes 0,1 and 2,3 into the two 16-bit halves of a register, one LOP3 per register masks
a code position and ORs in MAGIC (two codes per instruction), and one packed FMA (x * 1 - (MAGIC +
offset)) turns a pair of codes into c - offset: 1.5 instructions per 4-bit code instead of the
~7 that Triton's per-element integer ops cost (ncu, results/ncu/ncu-4-int4-g128-m16-h200.txt). The
CPU interpreter has no inline assembly and runs the same unpacking with tensor ops (`_unpack`).

Rows of x beyond M are masked loads (no memory traffic), so M = 1 runs as a 16-row tile. 8-bit codes
need 8 mantissa bits and run in fp16 (x is converted); narrower codes use x's own dtype.
Measured on the H100 (same JSON): a bit-plane variant (one dot per nibble position, no reordering
into K order) and a weight-as-first-operand variant were both slower than this one.

Formats: int8 (signed), uint8, uint4, uint3, uint2 / tern2, and bf16/fp16 weights (a plain skinny GEMM,
which beats cuBLAS's GEMV on most Llama shapes). uint3 codes come in 3-byte units of 8 codes, which
no PTX pattern here lines up with: they unpack with Triton tensor ops on the GPU too (`_unpack3`).
tern1.6 bytes (5 base-3 codes each) are read as 8 code slots, x gathered to match with zeros in the 3
spare slots (one scale per row only; grouped tern1.6 stays on `qlinear.qmm`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import torch

from trico.kernels.epilogue import check_residual, split_workspace
from trico.kernels.pdl import launch_kwargs, wait_for_producer
from trico.kernels.qlinear import INTERPRET, PackedWeight, half_bits, triton

if triton is not None:
    import triton.language as tl
    from triton.runtime.errors import OutOfResources

    from trico.kernels.epilogue import load_residual, store_output

TC_BITS = {
    "bf16": 16,
    "fp16": 16,
    "int8": 8,
    "uint8": 8,
    "uint4": 4,
    "uint3": 3,
    "uint2": 2,
    "tern2": 2,
    "tern1.6": 1,
}
"""Formats this kernel reads, with their bits per code; 1 marks tern1.6, whose bytes of 5 base-3 codes are
read as 8 code slots (the 3 extra slots meet zeros of x)."""


def tc_supported(pw: PackedWeight) -> bool:
    """Whether the tensor-core kernel handles this weight (format, K a multiple of 64, whole-step scale groups)."""
    if pw.fmt not in TC_BITS or pw.k % 64:
        return False
    if pw.scale_mode in (0, 1):
        return True
    if TC_BITS[pw.fmt] == 1:
        return False  # tern1.6 scale groups cut bytes of 5 codes: one scale per row only
    # a dot needs K >= 16; 3-bit steps are whole 32-code word triples (_unpack3)
    return pw.group_size % (32 if TC_BITS[pw.fmt] == 3 else 16) == 0


@dataclass(frozen=True)
class TcConfig:
    """Launch shape of the tensor-core skinny GEMM."""

    block_n: int
    block_k: int
    """Codes per loop step when one scale serves a whole row; grouped weights step one group at a time."""
    num_warps: int = 4
    num_stages: int = 4
    groups_per_step: int = 1
    """Grouped weights: groups handled per loop step (more bytes in flight per step)."""
    split_k: int = 1
    """Programs along K, summed with fp32 atomics (fills the GPU when N is small)."""
    block_m: int = 0
    """Rows of x a program takes; 0: all of them (M rounded up to a power of two, at least 16). Prompts
    above 64 rows set it, and the programs sharing a weight tile then run next to each other, so the
    tile is read from DRAM once and from L2 by the others."""


ASM_UNPACK = True
"""Unpack codes with inline PTX on the GPU (False: Triton tensor ops, for A/B timing)."""


WORD_ORDER_ROWS = 128
"""4- and 2-bit tiles of at least this many rows unpack in word order (`word_code_order`). Per layer at 16 rows
(H200, benchmarks/results/tc-steps-*-h200.json): with word-order 128-row tiles and the new rule, int4-g128 ran
1.04-1.57x the K-order kernel at its old rule's shapes (tc-split-sweep-h200.json, an earlier run) on six Llama
layers and tern2 1.05-3.0x (same run), while the old rule's 32- and 64-row tiles in word order ran 0.67-0.79x the
K-order kernel: every warp reorders the same x operands, so the x-side PRMTs weigh per weight as 32 / rows."""


def word_code_order(bits: int) -> list[list[int]]:
    """For 4- and 2-bit codes in word order: which code of a 4-byte word element i of unpacked output p holds.

    The word-order PTX keeps every pair of codes it makes in one register, in the order the masks give
    them (one LOP3 masks one code position of two bytes 16 bits apart), the kernel lays the outputs
    side by side along K and reads x in the same order (the dot sums over K in any order). Regrouping
    16-bit codes into K order instead takes byte moves and register shuffles: sm_90 SASS under Triton
    3.6 (`benchmarks/sass_mix.py --kernel tc`), 4-bit g128 128-row tiles, 4.20 -> 2.84 instructions a
    weight; 2-bit 64x256 tiles 4.91 -> 2.70."""
    if bits == 4:  # register (pair) = (nibble j of bytes 0 and 2) or (of bytes 1 and 3), shifted by 8
        return [[2 * (2 * (t % 2) + r) + t // 2 for t in range(4)] for r in range(2)]
    assert bits == 2, "word order is for 4- and 2-bit codes"
    return [[4 * (t // 2 + 2 * (t % 2)) + p for t in range(4)] for p in range(4)]


@functools.cache  # built once per pattern: word order took ~60 us of host time a launch (torch scalars)
def unpack_asm(
    bits: int, fp16: bool, offset: int, signed8: bool, word_order: bool = False
) -> tuple[str, str]:
    """PTX (and its constraint string) turning 4 packed bytes into their codes minus `offset` as 16-bit floats.

    Outputs follow `tl.inline_asm_elementwise(pack=4)`: one tensor per code position of a byte
    (1 for 8-bit, 2 for 4-bit, 4 for 2-bit codes), each two registers of two 16-bit floats. In K order
    element i of output p is code p of byte i: PRMT spreads bytes 0,1 and 2,3 into the 16-bit halves
    of two registers, one LOP3 per register masks a code position and ORs in MAGIC (two codes per
    instruction). In word order (4- and 2-bit) element i of output p is code `word_code_order(bits)[p][i]`
    of the word: the masks work on the word itself, no byte moves. Either way every code becomes
    MAGIC + c * 2^s (c OR-ed into the mantissa of 1024.0 or 128.0 at bit s) and one packed FMA
    (x * 2^-s - (MAGIC * 2^-s + offset)) leaves c - offset, exactly (small integers).
    """
    if bits == 8:
        assert fp16, "8-bit codes need fp16's mantissa"
        sub = 0x6400 + offset
        return (
            "{ .reg .b32 t, m, one, nb;\n"
            f"mov.b32 m, 0x64646464; mov.b32 one, 0x3C003C00; mov.b32 nb, 0x{(sub | 0x8000) * 0x10001:08X};\n"
            f"xor.b32 t, $2, 0x{0x80808080 if signed8 else 0:08X};\n"
            "prmt.b32 $0, t, m, 0x5140; prmt.b32 $1, t, m, 0x7362;\n"
            "fma.rn.f16x2 $0, $0, one, nb; fma.rn.f16x2 $1, $1, one, nb; }",
            "=r,=r,r",
        )
    if word_order:
        return _word_order_asm(bits, fp16, offset)
    magic, one, ty = (0x6400, 0x3C00, "f16x2") if fp16 else (0x4300, 0x3F80, "bf16x2")
    positions = 8 // bits
    mask = ((1 << bits) - 1) * 0x10001
    lines = [
        "{ .reg .b32 z, one, nb, t<2>, s<2>;",
        f"mov.b32 z, 0; mov.b32 one, 0x{one * 0x10001:08X}; mov.b32 nb, 0x{((magic + offset) | 0x8000) * 0x10001:08X};",
        # bytes 0, 1 (2, 3) of the input into the low bytes of the two halves of t0 (t1)
        f"prmt.b32 t0, ${2 * positions}, z, 0x4140; prmt.b32 t1, ${2 * positions}, z, 0x4342;",
    ]
    for p in range(positions):
        for h in range(2):
            src = f"t{h}"
            if p:
                lines.append(f"shr.u32 s{h}, t{h}, {bits * p};")
                src = f"s{h}"
            out = f"${2 * p + h}"
            lines.append(f"and.b32 {out}, {src}, 0x{mask:08X}; or.b32 {out}, {out}, 0x{magic * 0x10001:08X};")
            lines.append(f"fma.rn.{ty} {out}, {out}, one, nb;")
    lines.append("}")
    return "\n".join(lines), ",".join(["=r"] * (2 * positions) + ["r"])


def _word_order_asm(bits: int, fp16: bool, offset: int) -> tuple[str, str]:
    """`unpack_asm` in word order: fp16's 10 mantissa bits take a code at bit 4 (4-bit) or up to bit 6
    (2-bit) where it sits, scaled back by the FMA; bf16's 7 take codes up to bit 3 (4-bit) or 4 (2-bit), the
    others are shifted down first."""
    magic, ty = (1024.0, "f16x2") if fp16 else (128.0, "bf16x2")
    dt = torch.float16 if fp16 else torch.bfloat16
    positions = 8 // bits
    room = 10 if fp16 else 7
    mbits = half_bits(magic, dt) * 0x10001
    outs = []  # per output register: (byte pair: bytes 0/2 or 1/3, the code's bit in its byte)
    for p in range(positions):
        for h in range(2):
            outs.append((p, bits * h) if bits == 4 else (h, bits * p))
    shifts: dict[int, str] = {}
    for pair, bit in outs:
        shifts.setdefault(8 * pair + (bit if bit + bits > room else 0), f"t{len(shifts)}")
    word = f"${2 * positions}"
    lines = ["{ .reg .b32 t<8>, sc<8>, nb<8>;"]
    lines += [
        f"shr.u32 {reg}, {word}, {sh};" if sh else f"mov.b32 {reg}, {word};" for sh, reg in shifts.items()
    ]
    for i, (pair, bit) in enumerate(outs):
        shift = 8 * pair + (bit if bit + bits > room else 0)
        s = bit if bit + bits <= room else 0  # where the code sits in the mantissa after the shift
        mask = ((1 << bits) - 1) << s
        # (a & b) | c: lookup table 0xF0 & 0xCC | 0xAA (ptxas left a separate AND and OR as two LOP3s)
        lines.append(f"lop3.b32 ${i}, {shifts[shift]}, 0x{mask * 0x10001:08X}, 0x{mbits:08X}, 0xEA;")
        lines.append(
            f"mov.b32 sc{i}, 0x{half_bits(2.0**-s, dt) * 0x10001:08X}; "
            f"mov.b32 nb{i}, 0x{half_bits(-(magic * 2.0**-s + offset), dt) * 0x10001:08X};"
        )
        lines.append(f"fma.rn.{ty} ${i}, ${i}, sc{i}, nb{i};")
    lines.append("}")
    return "\n".join(lines), ",".join(["=r"] * (2 * positions) + ["r"])


if triton is not None:

    @triton.jit
    def _unpack_ptx(b, ASM: tl.constexpr, CONSTRAINTS: tl.constexpr, BITS: tl.constexpr, FP16: tl.constexpr,
                    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, WORD_ORDER: tl.constexpr):  # fmt: skip
        """Packed bytes [BN, BK * BITS / 8] -> (c - offset) [BN, BK] as 16-bit floats by `unpack_asm`'s PTX, in K
        order or (WORD_ORDER) with the outputs side by side."""
        if FP16:
            dt = tl.float16
        else:
            dt = tl.bfloat16
        if BITS == 8:
            w = tl.inline_asm_elementwise(ASM, CONSTRAINTS, [b], dtype=dt, is_pure=True, pack=4)
        elif BITS == 4:
            lo, hi = tl.inline_asm_elementwise(ASM, CONSTRAINTS, [b], dtype=(dt, dt), is_pure=True, pack=4)
            if WORD_ORDER:
                w = _side_by_side(lo, hi, BLOCK_N, BLOCK_K // 2)
            else:
                w = tl.reshape(tl.join(lo, hi), [BLOCK_N, BLOCK_K])
        else:
            p0, p1, p2, p3 = tl.inline_asm_elementwise(
                ASM, CONSTRAINTS, [b], dtype=(dt, dt, dt, dt), is_pure=True, pack=4
            )
            if WORD_ORDER:
                Q: tl.constexpr = BLOCK_K // 4
                w = _side_by_side(
                    _side_by_side(p0, p1, BLOCK_N, Q), _side_by_side(p2, p3, BLOCK_N, Q), BLOCK_N, 2 * Q
                )
            else:
                w = tl.reshape(tl.join(tl.join(p0, p2), tl.join(p1, p3)), [BLOCK_N, BLOCK_K])
        return w

    @triton.jit
    def _side_by_side(a, b, BLOCK_N: tl.constexpr, H: tl.constexpr):
        """[BN, H] and [BN, H] -> [BN, 2H], a's columns first (no interleaving: pairs stay in their registers)."""
        return tl.reshape(tl.permute(tl.join(a, b), (0, 2, 1)), [BLOCK_N, 2 * H])

    @triton.jit
    def _unpack(b, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, BITS: tl.constexpr, SIGNED8: tl.constexpr,
                WORD_ORDER: tl.constexpr):  # fmt: skip
        """Packed bytes [BN, BK * BITS / 8] (uint8) -> codes [BN, BK] (uint8) in K order, or in `unpack_asm`'s word
        order (WORD_ORDER, 4- and 2-bit codes)."""
        if BITS == 8:
            c = b ^ 0x80 if SIGNED8 else b  # two's complement int8 -> c + 128
        elif BITS == 1:
            # tern1.6: digit p of a byte is (b / 3^p) % 3 for p < 5; slots 5-7 are 0 (x is 0 there too).
            v = b.to(tl.int32)
            z = v * 0
            lo = tl.join(tl.join(v % 3, (v // 81) % 3), tl.join((v // 9) % 3, z))
            hi = tl.join(tl.join((v // 3) % 3, z), tl.join((v // 27) % 3, z))
            c = tl.reshape(tl.join(lo, hi), [BLOCK_N, BLOCK_K])
        elif BITS == 4 and not WORD_ORDER:
            # Code 2j is the low nibble of byte j: joining (low, high) on a new last axis is K order.
            c = tl.reshape(tl.join(b & 15, b >> 4), [BLOCK_N, BLOCK_K])
        elif BITS == 4:
            # word_code_order: output r holds nibble j of bytes r and r + 2 of each word, j-major
            q = tl.reshape(b, [BLOCK_N, BLOCK_K // 8, 2, 2])  # [n, word, byte // 2, byte % 2]
            e0, e1 = tl.split(q)  # bytes 0, 2 and 1, 3 of each word
            # join gives [word, byte pair, nibble]; the PTX's order is [word, nibble, byte pair]
            o0 = tl.reshape(tl.permute(tl.join(e0 & 15, e0 >> 4), (0, 1, 3, 2)), [BLOCK_N, BLOCK_K // 2])
            o1 = tl.reshape(tl.permute(tl.join(e1 & 15, e1 >> 4), (0, 1, 3, 2)), [BLOCK_N, BLOCK_K // 2])
            c = _side_by_side(o0, o1, BLOCK_N, BLOCK_K // 2)
        elif not WORD_ORDER:
            # Code 4j + p sits at bits 2p of byte j; the nested join lays (p0, p1, p2, p3) out in order.
            lo = tl.join(b & 3, (b >> 4) & 3)
            hi = tl.join((b >> 2) & 3, b >> 6)
            c = tl.reshape(tl.join(lo, hi), [BLOCK_N, BLOCK_K])
        else:
            # word_code_order: output p holds code position p of bytes 0, 2, 1, 3 of each word
            q = tl.permute(
                tl.reshape(b, [BLOCK_N, BLOCK_K // 16, 2, 2]), (0, 1, 3, 2)
            )  # [n, word, byte%2, byte//2]
            q = tl.reshape(q, [BLOCK_N, BLOCK_K // 4])
            H: tl.constexpr = BLOCK_K // 4
            c = _side_by_side(_side_by_side(q & 3, (q >> 2) & 3, BLOCK_N, H),
                              _side_by_side((q >> 4) & 3, q >> 6, BLOCK_N, H), BLOCK_N, 2 * H)  # fmt: skip
        return c

    @triton.jit
    def _word_order_x(x, BITS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_K: tl.constexpr):
        """x [BM, BK] in K order -> its columns in the order of an unpacked 4- or 2-bit tile (`word_code_order`)."""
        W: tl.constexpr = BLOCK_K * BITS // 32  # words a row a step
        if BITS == 4:  # code 8w + 4a + 2r + j sits at column r * BK/2 + 4w + 2j + a
            x5 = tl.reshape(x, [BLOCK_M, W, 2, 2, 2])
            xp = tl.permute(x5, (0, 3, 1, 4, 2))
        else:  # code 16w + 8h + 4s + p sits at column p * BK/4 + 4w + 2s + h
            x5 = tl.reshape(x, [BLOCK_M, W, 2, 2, 4])
            xp = tl.permute(x5, (0, 4, 1, 3, 2))
        return tl.reshape(xp, [BLOCK_M, BLOCK_K])

    @triton.jit
    def _units4(u0, u1, u2, u3, P: tl.constexpr):
        """Code P of four 24-bit units on two new axes: [..., a, b] is unit 2a + b's."""
        return tl.join(
            tl.join((u0 >> 3 * P) & 7, (u2 >> 3 * P) & 7), tl.join((u1 >> 3 * P) & 7, (u3 >> 3 * P) & 7)
        )

    @triton.jit
    def _unpack3(w_ptrs, w_mask, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """3-bit codes [BN, BK] (int32) in K order from 3-byte units of 8 codes (little-endian, code p at bits 3p).

        w_ptrs [BN, BK / 32, 4] points at the int32 words 3g, 3g + 1, 3g + 2 of each 32 codes (the fourth
        column repeats the third): a unit never lines up with a 16-byte PTX pattern, but 4 units are 3
        whole words, so the tile is read with 4-byte loads instead of one load a byte."""
        words = tl.load(w_ptrs, mask=w_mask[:, :, None], other=0)
        a, b = tl.split(tl.reshape(words, [BLOCK_N, BLOCK_K // 32, 2, 2]))
        w0, w2 = tl.split(a)
        w1, _ = tl.split(b)
        u0 = w0 & 0xFFFFFF
        u1 = ((w0 >> 24) & 0xFF) | ((w1 & 0xFFFF) << 8)
        u2 = ((w1 >> 16) & 0xFFFF) | ((w2 & 0xFF) << 16)
        u3 = (w2 >> 8) & 0xFFFFFF
        # Joins nest as [g, a, b, pa, pb, pc]: code 4pa + 2pb + pc of unit 2a + b, K order once flattened.
        evens = tl.join(tl.join(_units4(u0, u1, u2, u3, 0), _units4(u0, u1, u2, u3, 4)),
                        tl.join(_units4(u0, u1, u2, u3, 2), _units4(u0, u1, u2, u3, 6)))  # fmt: skip
        odds = tl.join(tl.join(_units4(u0, u1, u2, u3, 1), _units4(u0, u1, u2, u3, 5)),
                       tl.join(_units4(u0, u1, u2, u3, 3), _units4(u0, u1, u2, u3, 7)))  # fmt: skip
        return tl.reshape(tl.join(evens, odds), [BLOCK_N, BLOCK_K])

    @triton.jit
    def _tile_dot(x_ptrs, w_ptrs, x_mask, w_mask, BITS, SIGNED8, FP16, SUB, BLOCK_N, BLOCK_K, DOT_F32, ASM,
                  CONSTRAINTS, WORD_ORDER):  # noqa: ANN001, ANN202  # fmt: skip
        """One [BM, BK] x [BK, BN] step: the x tile in the dot's dtype, and x times the (MAGIC + c - SUB) tile."""
        x = tl.load(x_ptrs, mask=x_mask, other=0.0)
        if WORD_ORDER:
            x = _word_order_x(x, BITS, x.shape[0], BLOCK_K)
        if BITS == 16:
            w = tl.load(w_ptrs, mask=w_mask, other=0)
        elif ASM != "":
            b = tl.load(w_ptrs, mask=w_mask, other=0)
            w = _unpack_ptx(b, ASM, CONSTRAINTS, BITS, FP16, BLOCK_N, BLOCK_K, WORD_ORDER)
        else:
            if BITS == 3:
                c = _unpack3(w_ptrs, w_mask, BLOCK_N, BLOCK_K)
            else:
                c = _unpack(
                    tl.load(w_ptrs, mask=w_mask, other=0), BLOCK_N, BLOCK_K, BITS, SIGNED8, WORD_ORDER
                )
            bits = c.to(tl.int16) | (0x6400 if FP16 else 0x4300)
            w = bits.to(tl.float16 if FP16 else tl.bfloat16, bitcast=True)
            if SUB > 0:
                # The CPU interpreter's 16-bit float arithmetic is wrong: there, in fp32 (exact either way).
                w = w.to(tl.float32) - SUB if DOT_F32 else w - SUB
        xd = x.to(w.dtype) if BITS == 16 or not DOT_F32 else x.to(tl.float16 if FP16 else tl.bfloat16)
        if DOT_F32:  # the CPU interpreter's bf16 dot is wrong; fp32 of the same operands is exact
            part = tl.dot(xd.to(tl.float32), tl.trans(w.to(tl.float32)))
        else:
            part = tl.dot(xd, tl.trans(w))
        return xd, part

    @triton.jit
    def _tc_kernel(
        x_ptr,
        w_ptr,
        s_ptr,
        m_ptr,
        y_ptr,
        ws_ptr,
        cnt_ptr,
        res_ptr,
        M,
        N,
        K,
        KX,
        stride_xm,
        stride_wn,
        stride_sn,
        stride_ym,
        BITS: tl.constexpr,
        SIGNED8: tl.constexpr,
        OFFSET: tl.constexpr,
        HAS_MIN: tl.constexpr,
        PER_ROW: tl.constexpr,
        FP16: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        GROUPS_PER_STEP: tl.constexpr,
        SPLIT_K: tl.constexpr,
        HAS_RES: tl.constexpr,
        DOT_F32: tl.constexpr,
        ASM: tl.constexpr,
        CONSTRAINTS: tl.constexpr,
        WORD_ORDER: tl.constexpr,
        ROW_TILES: tl.constexpr,
        PDL: tl.constexpr,
    ):
        wait_for_producer(PDL)
        # Grouped weights: BLOCK_K is the group and a step covers GROUPS_PER_STEP groups. One scale per
        # row: BLOCK_K is free and the row sums of x are accumulated elementwise, reduced once. K counts
        # code slots: for tern1.6 (BITS 1) 8 a byte, 5 of them codes (x's KX columns), the rest meet zeros.
        pid_k = tl.program_id(1)
        # A prompt's row tiles of x vary fastest, so the programs that read one weight tile run together.
        if ROW_TILES:
            tile = tl.program_id(0)
            m_tiles = tl.cdiv(M, BLOCK_M)
            pid_m = tile % m_tiles
            pid_n = tile // m_tiles
        else:  # decode: one row tile
            pid_n = tl.program_id(0)
            pid_m = 0
            tile = pid_n
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_m = offs_m < M
        mask_n = offs_n < N
        y_offs = offs_m[:, None] * stride_ym + offs_n[None, :]
        ymask = mask_m[:, None] & mask_n[None, :]
        res = load_residual(res_ptr, y_offs, ymask, HAS_RES)
        BKB: tl.constexpr = BLOCK_K * BITS // 8 if BITS < 16 else BLOCK_K
        BKW: tl.constexpr = BLOCK_K * 3 // 32 if BITS == 3 else BKB  # w_ptr elements a step: words for 3 bits
        MAGIC: tl.constexpr = 1024.0 if FP16 else 128.0
        STEP: tl.constexpr = BLOCK_K * GROUPS_PER_STEP
        SUB: tl.constexpr = MAGIC + OFFSET if BITS < 16 else 0.0
        k_per_split = tl.cdiv(tl.cdiv(K, SPLIT_K), STEP) * STEP
        k_lo = pid_k * k_per_split
        k_hi = tl.minimum(k_lo + k_per_split, K)
        if BITS == 3:  # BKB = 3 * BLOCK_K / 8 bytes is no power of two: words 3g..3g+2 of each 32 codes
            word = (k_lo // 32 + tl.arange(0, BLOCK_K // 32))[:, None] * 3 + tl.minimum(tl.arange(0, 4), 2)[
                None, :
            ]
            w_ptrs = w_ptr + (offs_n[:, None] * stride_wn)[:, :, None] + word[None, :, :]
        else:
            w_ptrs = (
                w_ptr + offs_n[:, None] * stride_wn + (k_lo * BKB // BLOCK_K + tl.arange(0, BKB))[None, :]
            )
        XK: tl.constexpr = BLOCK_K * 5 // 8 if BITS == 1 else BLOCK_K  # x columns a step of BLOCK_K slots
        slot = tl.arange(0, BLOCK_K)
        if BITS == 1:
            xoff = (slot // 8) * 5 + slot % 8
            x_col = k_lo * XK // BLOCK_K
        else:
            xoff = slot
            # k_lo itself, not k_lo * XK // BLOCK_K: the division hides that k_lo is a multiple of the step, and
            # the bf16 loop then computed every cp.async address with 64-bit IMADs (sm_90 SASS 246 instructions
            # a step instead of 203; 2% of the H200 bf16 decode step)
            x_col = k_lo
        x_ptrs = x_ptr + offs_m[:, None] * stride_xm + (x_col + xoff)[None, :]
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        xacc = tl.zeros([BLOCK_M, BLOCK_K], dtype=tl.float32)
        for k0 in range(k_lo, k_hi, STEP):
            for gi in tl.static_range(GROUPS_PER_STEP):
                if BITS == 1:  # the row's last byte may be part-used and its last step part-full
                    k = k0 + gi * BLOCK_K
                    xcol = k * 5 // 8 + xoff
                    x_mask = mask_m[:, None] & ((slot % 8 < 5) & (xcol < KX))[None, :]
                    w_mask = mask_n[:, None] & (k // 8 + tl.arange(0, BKB) < K // 8)[None, :]
                else:
                    x_mask = mask_m[:, None]
                    w_mask = mask_n[:, None]
                xd, part = _tile_dot(
                    x_ptrs + gi * XK,
                    w_ptrs + gi * BKW,
                    x_mask,
                    w_mask,
                    BITS,
                    SIGNED8,
                    FP16,
                    SUB,
                    BLOCK_N,
                    BLOCK_K,
                    DOT_F32,
                    ASM,
                    CONSTRAINTS,
                    WORD_ORDER,
                )
                if BITS == 16 or PER_ROW:
                    acc += part
                    if HAS_MIN:
                        xacc += xd.to(tl.float32)
                else:
                    sidx = offs_n * stride_sn + (k0 + gi * BLOCK_K) // BLOCK_K
                    s = tl.load(s_ptr + sidx, mask=mask_n, other=0.0).to(tl.float32)
                    acc += part * s[None, :]
                    if HAS_MIN:
                        xs = tl.sum(xd.to(tl.float32), axis=1)
                        mn = tl.load(m_ptr + sidx, mask=mask_n, other=0.0).to(tl.float32)
                        acc += xs[:, None] * mn[None, :]
            w_ptrs += STEP * BKW // BLOCK_K
            x_ptrs += STEP * XK // BLOCK_K
        if PER_ROW and BITS < 16:
            s = tl.load(s_ptr + offs_n * stride_sn, mask=mask_n, other=0.0).to(tl.float32)
            acc = acc * s[None, :]
            if HAS_MIN:
                mn = tl.load(m_ptr + offs_n * stride_sn, mask=mask_n, other=0.0).to(tl.float32)
                acc += tl.sum(xacc, axis=1)[:, None] * mn[None, :]
        store_output(y_ptr, ws_ptr, cnt_ptr, res, y_offs, ymask, acc, tile, SPLIT_K, HAS_RES)


def tc_default_config(pw: PackedWeight, m: int) -> TcConfig:
    """A launch shape that is valid for every supported weight (used before tuning, and on the CPU)."""
    return TcConfig(block_n=32, block_k=128 if pw.k % 128 == 0 else 64)


def tc_candidates(pw: PackedWeight, m: int) -> list[TcConfig]:
    """Launch shapes worth timing for this weight (grid sizes from one wave of programs up)."""
    out = []
    if pw.scale_mode in (0, 1):
        ks = [bk for bk in (256, 512, 1024) if pw.k % bk == 0] or [64]
        for bn in (32, 64, 128):
            for bk in ks:
                for warps in (4, 8):
                    out.append(TcConfig(bn, bk, warps, 3))
    else:
        for bn in (32, 64, 128):
            for gps in (1, 2, 4):
                if pw.k % (pw.group_size * gps) == 0:
                    for warps in (4, 8):
                        out.append(TcConfig(bn, pw.group_size, warps, 3, gps))
    if pw.n <= 8192:
        out += [TcConfig(c.block_n, c.block_k, c.num_warps, c.num_stages, c.groups_per_step, 2) for c in out]
    return out


def tc_qmm(
    x: torch.Tensor,
    pw: PackedWeight,
    config: TcConfig | None = None,
    residual: torch.Tensor | None = None,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """y [M, N] = x [M, K] @ W^T (+ residual) through the tensor cores, streaming the packed weight once.

    Up to 64 rows one program takes all of x; more rows need a `config` with `block_m` (a prompt).
    y is in x's dtype unless `out_dtype` (e.g. float32: the fp32 accumulator, not rounded) says otherwise.
    """
    assert triton is not None, "Triton is not installed"
    assert tc_supported(pw), (
        f"the tensor-core kernel does not take {pw.fmt} with K={pw.k}, group {pw.group_size}"
    )
    assert x.dim() == 2 and x.shape[1] == pw.k and x.stride(1) == 1, f"x must be [M, {pw.k}], contiguous in K"
    m = x.shape[0]
    config = config or tc_default_config(pw, m)
    assert 1 <= m <= 64 or config.block_m, f"above 64 rows (got {m}) the launch shape must set block_m"
    key = (pw.fmt, pw.scale_mode, pw.group_size, pw.mins is not None, _block_m(m, config), config)
    config = _FITTED.get(key, config)
    while True:
        try:
            return _launch(x, pw, config, residual, out_dtype)
        except OutOfResources:
            # Shared memory per stage depends on the Triton build (the H200 image's 3.6 buffers the
            # x tile and the packed tile per stage: 3 x 128 KiB for 64 rows of x and 128 int8 rows,
            # 512 codes deep), so the launch shape shrinks until it fits, once per shape; the first
            # call of a shape comes before graph capture.
            smaller = _smaller(config, pw.scale_mode in (0, 1))
            if smaller is None:
                raise
            _FITTED[key] = config = smaller


_FITTED: dict[tuple, TcConfig] = {}


def _smaller(config: TcConfig, per_row: bool) -> TcConfig | None:
    """The next launch shape down in shared memory: fewer stages first, then shorter K steps."""
    if config.num_stages > 2:
        return replace(config, num_stages=config.num_stages - 1)
    if config.groups_per_step > 1:
        return replace(config, groups_per_step=config.groups_per_step // 2)
    if per_row and config.block_k > 64:
        return replace(config, block_k=config.block_k // 2)
    return None


def _block_m(m: int, config: TcConfig) -> int:
    """Rows of x one program takes."""
    return config.block_m or max(16, triton.next_power_of_2(m))


def _launch(
    x: torch.Tensor,
    pw: PackedWeight,
    config: TcConfig,
    residual: torch.Tensor | None,
    out_dtype: torch.dtype | None,
) -> torch.Tensor:
    """One launch of the kernel with this shape (tc_qmm has checked x and the format)."""
    m = x.shape[0]
    bits = TC_BITS[pw.fmt]
    per_row = pw.scale_mode in (0, 1)
    block_k = config.block_k if per_row else pw.group_size
    slots = 8 * pw.ku if bits == 1 else pw.k  # tern1.6: 8 code slots a byte, the last step masked
    assert bits == 1 or pw.k % block_k == 0, f"block_k {block_k} must divide K={pw.k}"
    if x.dtype == torch.float32:
        x = x.to(torch.bfloat16)  # the tensor cores take 16-bit operands; accumulation stays fp32
    block_m = _block_m(m, config)
    units = pw.units if bits == 16 else pw.units.view(torch.uint8)
    if bits == 3:  # read as int32 words (_unpack3): rows of 3K/8 bytes are whole words when K % 32 == 0
        units = units.view(torch.int32)
    fp16 = bits == 8 or (bits == 16 and units.dtype == torch.float16) or x.dtype == torch.float16
    gps = 1 if per_row else config.groups_per_step
    assert pw.k % (block_k * gps) == 0, f"{gps} groups per step must divide K={pw.k}"
    split = config.split_k
    out_dtype = out_dtype or x.dtype
    check_residual(residual, (m, pw.n), out_dtype)
    y = torch.empty(m, pw.n, dtype=out_dtype, device=x.device)
    scales = pw.scales if pw.scales is not None else units
    mins = pw.mins if pw.mins is not None else scales
    offset = 128 if pw.fmt == "int8" else pw.offset
    asm, constraints = ("", "")
    word_order = bits in (2, 4) and config.block_n >= WORD_ORDER_ROWS
    if ASM_UNPACK and not INTERPRET and (bits == 8 or bits == 4 or word_order):  # 2-bit K order: no faster
        asm, constraints = unpack_asm(bits, fp16, offset, pw.fmt == "int8", word_order)
    grid = (triton.cdiv(pw.n, config.block_n) * triton.cdiv(m, block_m), split)
    tiles = grid[0]
    ws, cnt = split_workspace(x.device, m * pw.n, tiles) if split > 1 else (y, y)
    _tc_kernel[grid](
        x,
        units,
        scales,
        mins,
        y,
        ws,
        cnt,
        residual if residual is not None else y,
        m,
        pw.n,
        slots,
        pw.k,
        x.stride(0),
        units.stride(0),
        pw.stride_sn,
        y.stride(0),
        BITS=bits,
        SIGNED8=pw.fmt == "int8",
        OFFSET=float(offset),
        HAS_MIN=pw.mins is not None,
        PER_ROW=per_row,
        FP16=fp16,
        BLOCK_M=block_m,
        BLOCK_N=config.block_n,
        BLOCK_K=block_k,
        GROUPS_PER_STEP=gps,
        SPLIT_K=split,
        HAS_RES=residual is not None,
        DOT_F32=INTERPRET,
        ASM=asm,
        CONSTRAINTS=constraints,
        WORD_ORDER=word_order,
        ROW_TILES=bool(config.block_m),
        num_warps=config.num_warps,
        num_stages=config.num_stages,
        **launch_kwargs(x),
    )
    return y


__all__ = [
    "ASM_UNPACK",
    "WORD_ORDER_ROWS",
    "TC_BITS",
    "TcConfig",
    "tc_candidates",
    "tc_default_config",
    "tc_qmm",
    "tc_supported",
    "unpack_asm",
    "word_code_order",
]
