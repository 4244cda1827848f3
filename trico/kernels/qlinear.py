"""Linear layers y = x @ W^T over every packed weight format (the shared weight-format contract).

Two paths, chosen by `trico.kernels.dispatch`:
- decode (M = rows of x <= 64): `qmm`, a skinny GEMM that streams the packed weight once, unpacks
  and dequantizes in registers and multiplies (broadcast-FMA for M == 1, tensor-core dot above);
  optional split-K with fp32 atomics when the grid over N alone is too small to fill the GPU;
- prefill (larger M): `dequantize` writes W in the activation dtype once and cuBLAS does the GEMM.
`qlinear_reference` is the plain-torch definition both are tested against.

Packed "units": every format is read as a 2-D array of units, each holding P consecutive codes of
a row (an int32 word of 8 nibbles or 16 crumbs, 3 bytes of 8 3-bit codes, a byte of 5 trits, ...).
Code p of unit j is k = P*j + p: the kernel expands a tile of units [BN, BJ] into codes
[BN, BJ, P] with vector shifts, so x is read as the matching contiguous [BJ, P] tile. For M == 1
the codes of each unit are reduced first and the group scale is applied once per unit; for
M > 1 the tile is reshaped to [BN, BJ*P] (which is K order) and fed to the tensor cores.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # no Triton: only the reference is usable
    triton = None
    tl = None


INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"
"""Triton 3.9's CPU interpreter returns garbage for bf16 `tl.dot`; there the dots run in fp32."""


@dataclass(frozen=True)
class FormatSpec:
    """How the kernel reads one QLinear format."""

    fid: int
    """Kernel-side id: 0 float, 1 int8, 2 uint8, 3 4-bit words, 4 2-bit words, 5 3-bit triples, 6 base 3."""
    codes_per_unit: int
    unit_bytes: int
    """Bytes of one unit in memory (3 for 3-bit); 4 for int32 words."""
    bits: int
    """Bits of one code (2 for ternary); 16 for float weights."""


SPECS: dict[str, FormatSpec] = {
    "bf16": FormatSpec(0, 1, 2, 16),
    "fp16": FormatSpec(0, 1, 2, 16),
    "int8": FormatSpec(1, 1, 1, 8),
    "uint8": FormatSpec(2, 1, 1, 8),
    "uint4": FormatSpec(3, 8, 4, 4),
    "uint2": FormatSpec(4, 16, 4, 2),
    "tern2": FormatSpec(4, 16, 4, 2),
    "uint3": FormatSpec(5, 8, 3, 3),
    "tern1.6": FormatSpec(6, 5, 1, 2),
}
"""Formats the kernels handle; `w8a8` (int8 activations) stays on the reference path."""


def half_bits(v: float, dtype: torch.dtype = torch.float16) -> int:
    """The 16-bit pattern of v in fp16 or bf16 (for constants of inline PTX)."""
    return int(torch.tensor(v, dtype=dtype).view(torch.int16).item()) & 0xFFFF


def code_offset(fmt: str, symmetric: bool) -> int:
    """What is subtracted from an unsigned code before scaling (2^(B-1) symmetric, 1 ternary)."""
    if fmt.startswith("tern"):
        return 1
    if fmt.startswith("uint") and symmetric:
        return 1 << (SPECS[fmt].bits - 1)
    return 0


def unpack_codes(qweight: torch.Tensor, fmt: str, k: int) -> torch.Tensor:
    """Codes [N, K] as int32 (signed for int8), via trico.quant.packing for packed formats."""
    if fmt == "int8":
        return qweight.to(torch.int32)
    from trico.quant.packing import layout

    return layout(fmt).unpack(qweight, k).to(torch.int32)


def dequantize_reference(
    qweight: torch.Tensor,
    scales: torch.Tensor,
    mins: torch.Tensor | None,
    fmt: str,
    group_size: int,
    k: int,
) -> torch.Tensor:
    """W [N, K] in fp32 straight from the format's formula."""
    if fmt in ("bf16", "fp16"):
        return qweight.float()
    c = unpack_codes(qweight, fmt, k).float() - code_offset(fmt, mins is None)
    n = qweight.shape[0]

    def expand(t: torch.Tensor) -> torch.Tensor:
        t = t.float()
        return t if t.shape[1] == 1 else t.repeat_interleave(group_size, dim=1)

    w = c * expand(scales)
    if mins is not None:
        w = w + expand(mins)
    return w.expand(n, k)


def qlinear_reference(
    x: torch.Tensor,
    qweight: torch.Tensor,
    scales: torch.Tensor | None,
    mins: torch.Tensor | None,
    fmt: str,
    group_size: int,
    k: int,
) -> torch.Tensor:
    """y = x @ W^T in fp32 math, returned in x's dtype."""
    w = dequantize_reference(qweight, scales, mins, fmt, group_size, k)
    return (x.float() @ w.t()).to(x.dtype)


if triton is not None:

    @triton.jit
    def _load_units(w_ptr, rows, offs_j, mask, stride_wn, FID: tl.constexpr):
        """Units [BN, BJ] of the packed weight as int32 (float weights as they are)."""
        base = w_ptr + rows[:, None] * stride_wn
        if FID == 5:
            p = base + offs_j[None, :] * 3
            b0 = tl.load(p, mask=mask, other=0).to(tl.int32)
            b1 = tl.load(p + 1, mask=mask, other=0).to(tl.int32)
            b2 = tl.load(p + 2, mask=mask, other=0).to(tl.int32)
            u = b0 | (b1 << 8) | (b2 << 16)
        elif FID == 0:
            u = tl.load(base + offs_j[None, :], mask=mask, other=0.0)
        else:
            u = tl.load(base + offs_j[None, :], mask=mask, other=0).to(tl.int32)
        return u

    @triton.jit
    def _codes_bc(uu, pp, FID: tl.constexpr, OFFSET: tl.constexpr):
        """Code pp of units uu (broadcastable int32 tensors) minus OFFSET, as fp32.

        Integer codes become floats through the exponent trick (c | 0x4B000000 read as fp32 is
        2^23 + c), which costs one logic op and one add instead of a slow int-to-float conversion.
        """
        if FID == 0:
            f = uu.to(tl.float32) + pp * 0.0
        else:
            if FID == 1:
                c = (uu + 128) + pp * 0  # signed int8 -> 0..255, offset 128 below
            elif FID == 3:
                c = (uu >> (pp * 4)) & 15
            elif FID == 4:
                c = (uu >> (pp * 2)) & 3
            elif FID == 5:
                c = (uu >> (pp * 3)) & 7
            elif FID == 6:
                # digit p of a base-3 byte: (b // 3^p) % 3 by multiply-shift (exact for b <= 242)
                mul = tl.where(
                    pp == 0,
                    65536,
                    tl.where(pp == 1, 21846, tl.where(pp == 2, 7282, tl.where(pp == 3, 2428, 810))),
                )
                q = (uu * mul) >> 16
                c = q - 3 * ((q * 21846) >> 16)
            else:
                c = uu + pp * 0
            bias = 8388608.0 + OFFSET + (128 if FID == 1 else 0)
            f = (c | 0x4B000000).to(tl.float32, bitcast=True) - bias
        return f

    @triton.jit
    def _codes(u, offs_p, FID: tl.constexpr, OFFSET: tl.constexpr):
        """Units [BN, BJ] -> codes minus OFFSET as fp32 [BN, BJ, P_PAD] (code p of unit j is k = P*j + p)."""
        return _codes_bc(u[:, :, None], offs_p[None, None, :], FID, OFFSET)

    @triton.jit
    def _group_step(acc, x2, w2, s_ptr, m_ptr, sidx, mask_n, HAS_MIN: tl.constexpr, DOT_F32: tl.constexpr):
        """acc + x2 @ (s * w2 + min)^T for one step inside a scale group: w2 holds bare codes (minus the offset),
        so the dot runs on 16-bit operands exactly and the group's scale (and min times the step's x sums)
        is applied to the [BM, BN] product in fp32, not per weight (nor in tf32x3 on fp32 operands)."""
        if DOT_F32:  # the CPU interpreter's 16-bit dot is wrong; fp32 of the same operands is exact
            part = tl.dot(x2.to(tl.float32), tl.trans(w2.to(tl.float32)))
        else:
            part = tl.dot(x2, tl.trans(w2.to(x2.dtype)))
        acc += part * tl.load(s_ptr + sidx, mask=mask_n, other=0.0).to(tl.float32)[None, :]
        if HAS_MIN:
            xs = tl.sum(x2.to(tl.float32), axis=1)
            acc += xs[:, None] * tl.load(m_ptr + sidx, mask=mask_n, other=0.0).to(tl.float32)[None, :]
        return acc

    @triton.jit
    def _qmm_kernel(
        x_ptr,
        w_ptr,
        s_ptr,
        m_ptr,
        y_ptr,
        M,
        N,
        K,
        KU,
        G,
        stride_xm,
        stride_wn,
        stride_sn,
        stride_ym,
        FID: tl.constexpr,
        P: tl.constexpr,
        P_PAD: tl.constexpr,
        OFFSET: tl.constexpr,
        HAS_MIN: tl.constexpr,
        SCALE_MODE: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_J: tl.constexpr,
        SPLIT_K: tl.constexpr,
        USE_DOT: tl.constexpr,
        DOT_F32: tl.constexpr,
        DUP: tl.constexpr,
        BLOCK_IN_GROUP: tl.constexpr,
    ):
        # SCALE_MODE: 0 no scales (float W), 1 one scale per row (applied to the accumulator),
        # 2 one scale per unit (group a multiple of P), 3 one scale per code (tern1.6 groups).
        # GROUP_DOT: every step lies in one scale group, so the tensor cores multiply the bare codes
        # (exact in 16 bits) and the step's [BM, BN] product is scaled in fp32 (`_group_step`).
        GROUP_DOT: tl.constexpr = USE_DOT and SCALE_MODE == 2 and BLOCK_IN_GROUP
        pid_n = tl.program_id(0)
        pid_k = tl.program_id(1)
        pid_m = tl.program_id(2)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_p = tl.arange(0, P_PAD)
        mask_m = offs_m < M
        mask_n = offs_n < N
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
        xsum = tl.zeros([BLOCK_M], dtype=tl.float32)
        acc2 = tl.zeros([BLOCK_N, BLOCK_J], dtype=tl.float32)
        xs2 = tl.zeros([BLOCK_J], dtype=tl.float32)
        per_split = tl.cdiv(tl.cdiv(KU, SPLIT_K), BLOCK_J) * BLOCK_J
        j_lo = pid_k * per_split
        j_hi = tl.minimum(j_lo + per_split, KU)
        for j0 in range(j_lo, j_hi, BLOCK_J):
            if DUP:
                # Tensor-core variant without a reshape: every code loads its unit (repeated
                # addresses hit L1), so the weight tile is built directly in K order [BN, BK].
                kk = j0 * P + tl.arange(0, BLOCK_J * P)
                kmask1 = kk < tl.minimum(j_hi * P, K)
                m2 = mask_n[:, None] & kmask1[None, :]
                u2 = _load_units(w_ptr, offs_n, kk // P, m2, stride_wn, FID)
                f2 = _codes_bc(u2, (kk % P)[None, :], FID, OFFSET)
                if SCALE_MODE >= 2 and not GROUP_DOT:
                    sidx2 = offs_n[:, None] * stride_sn + (kk // G)[None, :]
                    f2 = f2 * tl.load(s_ptr + sidx2, mask=m2, other=0.0).to(tl.float32)
                    if HAS_MIN:
                        f2 = f2 + tl.load(m_ptr + sidx2, mask=m2, other=0.0).to(tl.float32)
                x2 = tl.load(
                    x_ptr + offs_m[:, None] * stride_xm + kk[None, :],
                    mask=mask_m[:, None] & kmask1[None, :],
                    other=0.0,
                )
                if GROUP_DOT:
                    acc = _group_step(acc, x2, f2, s_ptr, m_ptr, offs_n * stride_sn + (j0 * P) // G, mask_n,
                                      HAS_MIN, DOT_F32)  # fmt: skip
                elif DOT_F32:
                    acc += tl.dot(x2.to(tl.float32), tl.trans(f2))
                elif SCALE_MODE >= 2:
                    acc += tl.dot(x2.to(tl.float32), tl.trans(f2), input_precision="tf32x3")
                else:
                    acc += tl.dot(x2, tl.trans(f2.to(x2.dtype)))
                if SCALE_MODE == 1 and HAS_MIN:
                    xsum += tl.sum(x2.to(tl.float32), axis=1)
            else:
                offs_j = j0 + tl.arange(0, BLOCK_J)
                mask_j = offs_j < j_hi
                wmask = mask_n[:, None] & mask_j[None, :]
                u = _load_units(w_ptr, offs_n, offs_j, wmask, stride_wn, FID)
                if SCALE_MODE == 2 and not GROUP_DOT:
                    sidx = offs_n[:, None] * stride_sn + (offs_j * P // G)[None, :]
                    su = tl.load(s_ptr + sidx, mask=wmask, other=0.0).to(tl.float32)
                    if HAS_MIN:
                        mu = tl.load(m_ptr + sidx, mask=wmask, other=0.0).to(tl.float32)
                if USE_DOT:
                    f = _codes(u, offs_p, FID, OFFSET)  # [BN, BJ, P_PAD]
                    k2 = offs_j[:, None] * P + offs_p[None, :]  # [BJ, P_PAD]
                    kmask = mask_j[:, None] & (offs_p < P)[None, :] & (k2 < K)
                    if SCALE_MODE == 3:
                        sidx3 = offs_n[:, None, None] * stride_sn + (k2 // G)[None, :, :]
                        m3 = mask_n[:, None, None] & kmask[None, :, :]
                        f = f * tl.load(s_ptr + sidx3, mask=m3, other=0.0).to(tl.float32)
                    if P == P_PAD:  # codes of consecutive units are consecutive k: one dense 2-D tile of x
                        kk = j0 * P + tl.arange(0, BLOCK_J * P_PAD)
                        x2 = tl.load(
                            x_ptr + offs_m[:, None] * stride_xm + kk[None, :],
                            mask=mask_m[:, None] & (kk < tl.minimum(j_hi * P, K))[None, :],
                            other=0.0,
                        )
                    else:
                        xv = tl.load(
                            x_ptr + offs_m[:, None, None] * stride_xm + k2[None, :, :],
                            mask=mask_m[:, None, None] & kmask[None, :, :],
                            other=0.0,
                        )
                        x2 = tl.reshape(xv, [BLOCK_M, BLOCK_J * P_PAD])
                    if SCALE_MODE == 2 and not GROUP_DOT:
                        f = f * su[:, :, None]
                        if HAS_MIN:
                            f = f + mu[:, :, None]
                    w2 = tl.reshape(f, [BLOCK_N, BLOCK_J * P_PAD])
                    if GROUP_DOT:
                        acc = _group_step(acc, x2, w2, s_ptr, m_ptr, offs_n * stride_sn + (j0 * P) // G, mask_n,
                                          HAS_MIN, DOT_F32)  # fmt: skip
                    elif DOT_F32:
                        acc += tl.dot(x2.to(tl.float32), tl.trans(w2))
                    elif SCALE_MODE >= 2:
                        # Scaled weights rounded to bf16 for the tensor cores moved 42% of a ternary
                        # layer's outputs off the fp32 reference; three tf32 products keep ~fp32.
                        acc += tl.dot(x2.to(tl.float32), tl.trans(w2), input_precision="tf32x3")
                    else:  # bare integer codes (the row scale comes after the loop): exact in 16 bits
                        acc += tl.dot(x2, tl.trans(w2.to(x2.dtype)))
                    if SCALE_MODE == 1 and HAS_MIN:
                        xsum += tl.sum(x2.to(tl.float32), axis=1)
                else:
                    # M == 1: codes laid out [P, BN, BJ] so that the code axis is the slowest one
                    # and stays in registers: the per-unit sum over codes is in-thread, the scale is
                    # applied once per unit, and the [BN, BJ] partial sums are reduced across
                    # threads only once, after the loop.
                    fT = _codes_bc(u[None, :, :], offs_p[:, None, None], FID, OFFSET)  # [P_PAD, BN, BJ]
                    kT = offs_j[None, :] * P + offs_p[:, None]  # [P_PAD, BJ]
                    kmaskT = mask_j[None, :] & (offs_p < P)[:, None] & (kT < K)
                    if SCALE_MODE == 3:
                        sidxT = offs_n[None, :, None] * stride_sn + (kT // G)[:, None, :]
                        mT = mask_n[None, :, None] & kmaskT[:, None, :]
                        fT = fT * tl.load(s_ptr + sidxT, mask=mT, other=0.0).to(tl.float32)
                    xv = tl.load(x_ptr + kT, mask=kmaskT, other=0.0).to(tl.float32)  # [P_PAD, BJ]
                    part = tl.sum(fT * xv[:, None, :], axis=0)  # [BN, BJ]
                    if SCALE_MODE == 2:
                        part = part * su
                        if HAS_MIN:
                            part += mu * tl.sum(xv, axis=0)[None, :]
                    acc2 += part
                    if SCALE_MODE == 1 and HAS_MIN:
                        xs2 += tl.sum(xv, axis=0)
        if not USE_DOT:
            acc += tl.sum(acc2, axis=1)[None, :]
            if SCALE_MODE == 1 and HAS_MIN:
                xsum += tl.sum(xs2, axis=0)
        if SCALE_MODE == 1:
            s = tl.load(s_ptr + offs_n * stride_sn, mask=mask_n, other=0.0).to(tl.float32)
            acc = acc * s[None, :]
            if HAS_MIN:
                mn = tl.load(m_ptr + offs_n * stride_sn, mask=mask_n, other=0.0).to(tl.float32)
                acc += xsum[:, None] * mn[None, :]
        y_ptrs = y_ptr + offs_m[:, None] * stride_ym + offs_n[None, :]
        ymask = mask_m[:, None] & mask_n[None, :]
        if SPLIT_K == 1:
            tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=ymask)
        else:
            tl.atomic_add(y_ptrs, acc, mask=ymask)

    @triton.jit
    def _dequant_kernel(
        w_ptr,
        s_ptr,
        m_ptr,
        out_ptr,
        N,
        K,
        KU,
        G,
        stride_wn,
        stride_sn,
        FID: tl.constexpr,
        P: tl.constexpr,
        P_PAD: tl.constexpr,
        OFFSET: tl.constexpr,
        HAS_MIN: tl.constexpr,
        SCALE_MODE: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_J: tl.constexpr,
    ):
        offs_n = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_j = tl.program_id(1) * BLOCK_J + tl.arange(0, BLOCK_J)
        offs_p = tl.arange(0, P_PAD)
        mask_n = offs_n < N
        mask_j = offs_j < KU
        u = _load_units(w_ptr, offs_n, offs_j, mask_n[:, None] & mask_j[None, :], stride_wn, FID)
        f = _codes(u, offs_p, FID, OFFSET)
        k2 = offs_j[:, None] * P + offs_p[None, :]
        m3 = mask_n[:, None, None] & (mask_j[:, None] & (offs_p < P)[None, :] & (k2 < K))[None, :, :]
        # Scales are loaded once per row (mode 1) or per unit (mode 2) and broadcast: a load per code
        # made the int4 prefill's dequantization issue-bound (~1.1 TB/s of output on the H200).
        if SCALE_MODE == 1:
            sidx = offs_n[:, None, None] * stride_sn
            smask = mask_n[:, None, None]
        elif SCALE_MODE == 2:
            sidx = offs_n[:, None, None] * stride_sn + (offs_j * P // G)[None, :, None]
            smask = mask_n[:, None, None] & mask_j[None, :, None]
        else:
            sidx = offs_n[:, None, None] * stride_sn + (k2 // G)[None, :, :]
            smask = m3
        f = f * tl.load(s_ptr + sidx, mask=smask, other=0.0).to(tl.float32)
        if HAS_MIN:
            f = f + tl.load(m_ptr + sidx, mask=smask, other=0.0).to(tl.float32)
        out = out_ptr + offs_n[:, None, None] * K + k2[None, :, :]
        tl.store(out, f.to(out_ptr.dtype.element_ty), mask=m3)


@dataclass(frozen=True)
class PackedWeight:
    """A packed weight as the kernels read it: units viewed with their in-memory element type."""

    fmt: str
    units: torch.Tensor
    """[N, KU] (int32 words for 2/4-bit, uint8 bytes otherwise, float for bf16/fp16)."""
    scales: torch.Tensor | None
    mins: torch.Tensor | None
    group_size: int
    """Codes per scale along K; K means one scale per row (also for per-tensor scales)."""
    n: int
    k: int
    offset: int

    @property
    def ku(self) -> int:
        """Units per row."""
        if SPECS[self.fmt].fid == 5:
            return self.units.shape[1] // 3
        return self.units.shape[1]

    @property
    def scale_mode(self) -> int:
        """0 none, 1 per row, 2 per unit, 3 per code (see _qmm_kernel)."""
        if SPECS[self.fmt].fid == 0:
            return 0
        if self.group_size >= self.k:
            return 1
        return 2 if self.group_size % SPECS[self.fmt].codes_per_unit == 0 else 3

    @property
    def stride_sn(self) -> int:
        """Row stride of scales/mins (0 when one scale row serves every output row)."""
        if self.scales is None or self.scales.shape[0] == 1:
            return 0
        return self.scales.stride(0)


def pack_for_kernel(
    qweight: torch.Tensor,
    scales: torch.Tensor | None,
    mins: torch.Tensor | None,
    fmt: str,
    group_size: int,
    k: int,
) -> PackedWeight:
    """View a contract-packed weight the way the kernels read it (no copy for contiguous inputs)."""
    assert fmt in SPECS, f"no kernel for format {fmt}"
    spec = SPECS[fmt]
    assert qweight.is_contiguous(), "qweight must be contiguous"
    n = qweight.shape[0]
    if spec.fid in (3, 4):
        assert k % spec.codes_per_unit == 0, f"{fmt} kernel needs K % {spec.codes_per_unit} == 0, got {k}"
        units = qweight.view(torch.uint8).view(torch.int32)
    else:
        units = qweight
    if spec.fid == 5:
        assert k % 8 == 0, f"uint3 needs K % 8 == 0, got {k}"
    if spec.fid != 0:
        assert scales is not None and scales.dim() == 2 and scales.stride(1) == 1, (
            "scales must be 2-D, dense in K"
        )
        assert mins is None or mins.stride() == scales.stride(), "mins must be laid out like scales"
    g = k if group_size in (0, k) or scales is None or scales.shape[1] == 1 else group_size
    if g < k and g % spec.codes_per_unit:
        assert mins is None, "per-code scale groups are supported for symmetric formats only"
    return PackedWeight(fmt, units, scales, mins, g, n, k, code_offset(fmt, mins is None))


@dataclass(frozen=True)
class GemvConfig:
    """Launch shape of the decode kernel."""

    block_n: int
    block_kb: int
    """Packed bytes per row per loop iteration (bytes of units, 4 per 3-bit triple)."""
    split_k: int
    num_warps: int = 4
    num_stages: int = 3
    dup: bool = False
    """M > 1 only: build the weight tile in K order by repeated unit loads instead of a reshape."""


def default_config(pw: PackedWeight, m: int) -> GemvConfig:
    """The launch shape used before (or without) a measurement (interpreter, graph capture).

    On the H100 (benchmarks/results/kernels-h100.json) these were the most frequent winners, but
    on some format/shape pairs they ran 2-5x slower than the best candidate, hence tuned_config.
    """
    if m == 1:
        return GemvConfig(8, 256, 1)
    # grouped weights: steps of 64 unit bytes stay inside 128-code groups (GROUP_DOT in _qmm_kernel)
    return GemvConfig(16, 64 if pw.scale_mode == 2 else 128, 1)


_TUNED: dict[tuple, GemvConfig | None] = {}
"""Fastest measured launch shape per (format, shape, rows) on this GPU; None means cuBLAS (float W)."""


def candidates(m: int) -> list[GemvConfig]:
    """Launch shapes tried by tuned_config (M == 1: broadcast-FMA GEMV; M > 1: tensor-core tiles)."""
    if m == 1:
        return [GemvConfig(8, 256, 1), GemvConfig(4, 512, 1), GemvConfig(16, 256, 1), GemvConfig(8, 256, 2)]
    return [
        GemvConfig(32, 128, 1),
        GemvConfig(16, 128, 1),
        GemvConfig(32, 64, 1),
        GemvConfig(64, 64, 1),
        GemvConfig(32, 64, 4),
        GemvConfig(32, 64, 1, dup=True),
        GemvConfig(64, 64, 1, dup=True),
        GemvConfig(16, 64, 1, dup=True),
    ]


L2_FLUSH_BYTES = 128 * 2**20
"""Bytes `tuned_config` writes before each timed call so the weight is read from DRAM, as in a decode step
(twice the 50-60 MB L2 of an H100/H200; allocated only while it measures, so a first call's peak memory
includes it)."""


def _time_ms(fn, flush: torch.Tensor | None = None, reps: int = 10) -> float:  # noqa: ANN001 - a no-argument callable
    """Median ms of fn(), with `flush` overwritten before each call (the L2 cache emptied of fn's data).

    Timing back-to-back calls of one weight let weights below the L2's size stay cached between calls,
    so the pick followed L2 speed, not DRAM's; on an H200 the int3-g128 12288x4096 one-row choice then
    varied between runs from 28 to 54 us (beyond L2: 28 us for the best shape).
    """
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        if flush is not None:
            flush.zero_()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[reps // 2]


def tuned_config(x: torch.Tensor, pw: PackedWeight) -> GemvConfig | None:
    """The fastest candidate for this weight and x's row count, measured once per process.

    Never measures while a CUDA graph is being captured (the default shape is used then); graph
    capture in trico.engine warms the step up first, so the tuned shape is what gets captured.
    For float weights cuBLAS competes too (None = F.linear wins).
    """
    m = x.shape[0]
    bucket = 1 if m == 1 else max(16, triton.next_power_of_2(m))
    key = (pw.fmt, pw.n, pw.k, pw.group_size, pw.mins is not None, pw.stride_sn == 0, bucket, x.dtype)
    if key in _TUNED:
        return _TUNED[key]
    if INTERPRET or not x.is_cuda or torch.cuda.is_current_stream_capturing():
        return default_config(pw, m)
    best, best_ms = default_config(pw, m), float("inf")
    flush = torch.empty(L2_FLUSH_BYTES // 4, dtype=torch.float32, device=x.device)
    for cfg in candidates(m):
        try:
            ms = _time_ms(lambda c=cfg: qmm(x, pw, c), flush)
        except Exception:  # a shape this GPU's compiler refuses (registers, shared memory) is skipped
            continue
        if ms < best_ms:
            best, best_ms = cfg, ms
    if SPECS[pw.fmt].fid == 0 and _time_ms(lambda: torch.nn.functional.linear(x, pw.units), flush) < best_ms:
        best = None
    _TUNED[key] = best
    return best


def _block_j(pw: PackedWeight, block_kb: int) -> int:
    unit = 4 if SPECS[pw.fmt].fid == 5 else SPECS[pw.fmt].unit_bytes
    return max(16, block_kb // unit)


def qmm(x: torch.Tensor, pw: PackedWeight, config: GemvConfig | None = None) -> torch.Tensor:
    """Decode-path y [M, N] = x [M, K] @ W^T with the packed weight streamed once (M <= 64)."""
    assert triton is not None, "Triton is not installed"
    assert x.dim() == 2 and x.shape[1] == pw.k, f"x must be [M, {pw.k}], got {tuple(x.shape)}"
    assert x.stride(1) == 1, "x must be contiguous along K"
    assert x.dtype in (torch.bfloat16, torch.float16, torch.float32), f"unsupported x dtype {x.dtype}"
    m = x.shape[0]
    assert 1 <= m <= 64, f"the decode kernel takes 1..64 rows, got {m}"
    spec = SPECS[pw.fmt]
    config = config or default_config(pw, m)
    use_dot = m > 1
    block_m = 1 if m == 1 else max(16, triton.next_power_of_2(m))
    if x.dtype == torch.float32 and use_dot:
        x = x.to(torch.bfloat16)  # the dot runs on bf16 operands; accumulation stays fp32
    # The repeated-load variant needs K-ordered codes per unit (P a power of two) and a dot.
    dup = config.dup and use_dot and spec.codes_per_unit == triton.next_power_of_2(spec.codes_per_unit)
    block_j = _block_j(pw, config.block_kb)
    y_dtype = torch.float32 if config.split_k > 1 else x.dtype
    y = (torch.zeros if config.split_k > 1 else torch.empty)(m, pw.n, dtype=y_dtype, device=x.device)
    scales = pw.scales if pw.scales is not None else pw.units
    mins = pw.mins if pw.mins is not None else scales
    grid = (triton.cdiv(pw.n, config.block_n), config.split_k, triton.cdiv(m, block_m))
    _qmm_kernel[grid](
        x,
        pw.units,
        scales,
        mins,
        y,
        m,
        pw.n,
        pw.k,
        pw.ku,
        pw.group_size,
        x.stride(0),
        pw.units.stride(0),
        pw.stride_sn,
        y.stride(0),
        FID=spec.fid,
        P=spec.codes_per_unit,
        P_PAD=triton.next_power_of_2(spec.codes_per_unit),
        OFFSET=pw.offset,
        HAS_MIN=pw.mins is not None,
        SCALE_MODE=pw.scale_mode,
        BLOCK_M=block_m,
        BLOCK_N=config.block_n,
        BLOCK_J=block_j,
        SPLIT_K=config.split_k,
        USE_DOT=use_dot,
        DOT_F32=INTERPRET,
        DUP=dup,
        BLOCK_IN_GROUP=pw.group_size % (block_j * spec.codes_per_unit) == 0,
        num_warps=config.num_warps,
        num_stages=config.num_stages,
    )
    return y if config.split_k == 1 else y.to(x.dtype)


def dequantize(pw: PackedWeight, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """W [N, K] in `dtype`, unpacked on the device (the prefill path feeds it to cuBLAS)."""
    assert triton is not None, "Triton is not installed"
    spec = SPECS[pw.fmt]
    if spec.fid == 0:
        return pw.units.to(dtype)
    out = torch.empty(pw.n, pw.k, dtype=dtype, device=pw.units.device)
    block_n, block_j = 16, 32 if spec.codes_per_unit >= 8 else 128
    grid = (triton.cdiv(pw.n, block_n), triton.cdiv(pw.ku, block_j))
    mins = pw.mins if pw.mins is not None else pw.scales
    _dequant_kernel[grid](
        pw.units,
        pw.scales,
        mins,
        out,
        pw.n,
        pw.k,
        pw.ku,
        pw.group_size,
        pw.units.stride(0),
        pw.stride_sn,
        FID=spec.fid,
        P=spec.codes_per_unit,
        P_PAD=triton.next_power_of_2(spec.codes_per_unit),
        OFFSET=pw.offset,
        HAS_MIN=pw.mins is not None,
        SCALE_MODE=pw.scale_mode,
        BLOCK_N=block_n,
        BLOCK_J=block_j,
    )
    return out
