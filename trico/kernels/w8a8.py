"""SmoothQuant W8A8 layers (QLinear format `w8a8`) on the tensor cores: int8 x int8 products summed in int32.

The format's math (`QLinear._w8a8_forward`): x is divided by the layer's smoothing vector, quantized to
int8 per token (scale = absmax / 127, codes rounded half to even), multiplied with the int8 weight codes,
and the integer sum is scaled by the token's scale and the output channel's. Two kernels:

- `_row_quant_kernel`: one program per row of x; a pass for the absmax, a pass for the codes (whole
  rows of up to 16384 values in one block).
- `_w8a8_kernel`: the int8 MMA GEMM. Unlike the weight-only kernels no code is unpacked: the int8
  weight tile goes from shared memory into the MMA as it is, and the sums are exact integers (|sum| <=
  127^2 K < 2^31 for K < 133000), so the only rounding is the fp32 scaling and the output's.

Before this module the format ran only on the torch reference path (a cached fp32 copy of the codes,
4 bytes a weight). The engine fuses Q/K/V and gate/up where their smoothing vectors agree, so a decoder
layer runs four of these GEMMs, each after its own quantization launch. Decode is memory-bound (int8
activations save nothing over int8 weights there); a long prompt is compute-bound, where int8 MMAs
run at twice the bf16 rate: from `PREFILL_ROWS` rows the GEMM takes 128 x 128 tiles of 8 warps
(`benchmarks/w8a8_prefill.py` times it against bf16 and int8 cuBLAS).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trico.kernels.epilogue import check_residual
from trico.kernels.pdl import launch_kwargs, wait_for_producer
from trico.kernels.qlinear import triton

if triton is not None:
    import triton.language as tl

    from trico.kernels.epilogue import load_residual, store_output


@dataclass(frozen=True)
class W8A8Config:
    """Launch shape of the int8 GEMM."""

    block_m: int
    block_n: int
    block_k: int = 256
    num_warps: int = 4
    num_stages: int = 4


def w8a8_supported(module: torch.nn.Module) -> bool:
    """Whether the kernels take this QLinear: format w8a8, K a multiple of 32 (one int8 MMA step)."""
    return triton is not None and getattr(module, "fmt", None) == "w8a8" and module.in_features % 32 == 0


PREFILL_ROWS = 256
"""From this many rows of x the GEMM is compute-bound: large tiles (`w8a8_choice`)."""


def w8a8_choice(m: int, n: int, k: int) -> W8A8Config:
    """A launch shape for x [m, k] and n outputs: decode sizes get row tiles small enough to give ~one
    program an SM (132); prefill sizes 128 x 128 tiles of 8 warps (tensor-core bound, not memory bound)."""
    block_k = 256 if k % 256 == 0 else 128 if k % 128 == 0 else 64 if k % 64 == 0 else 32
    if m >= PREFILL_ROWS:
        return W8A8Config(128, 128, min(block_k, 128), 8, 3)
    block_m = 16 if m <= 16 else 32 if m <= 32 else 64
    block_n = 64 if n // 64 * triton.cdiv(m, block_m) >= 132 else 32
    return W8A8Config(block_m, block_n, block_k, 4, 4 if block_m <= 32 else 3)


if triton is not None:

    @triton.jit
    def _round_half_even(v):
        """v rounded to the nearest integer, ties to even (torch.round), exact for |v| < 2^22."""
        r = tl.floor(v + 0.5)
        odd = (r - 2.0 * tl.floor(r * 0.5)) != 0.0
        return tl.where((r - v == 0.5) & odd, r - 1.0, r)

    @triton.jit
    def _row_quant_kernel(
        x_ptr, smooth_ptr, q_ptr, s_ptr, K, stride_xm, BLOCK: tl.constexpr, PDL: tl.constexpr
    ):  # fmt: skip
        # One program per row: x / smooth, its absmax, then the codes. A row that fits one block stays in
        # registers (one load, one division a value less); a longer one is read twice (L1/L2 the second time).
        wait_for_producer(PDL)
        row = tl.program_id(0)
        x_row = x_ptr + row * stride_xm
        if K <= BLOCK:
            offs = tl.arange(0, BLOCK)
            mask = offs < K
            x = tl.load(x_row + offs, mask=mask, other=0.0).to(tl.float32)
            sm = tl.load(smooth_ptr + offs, mask=mask, other=1.0).to(tl.float32)
            xs = tl.div_rn(x, sm)
            scale = tl.maximum(tl.div_rn(tl.max(tl.abs(xs), axis=0), 127.0), 1e-8)
            tl.store(s_ptr + row, scale)
            q = tl.minimum(tl.maximum(_round_half_even(tl.div_rn(xs, scale)), -127.0), 127.0)
            tl.store(q_ptr + row * K + offs, q.to(tl.int8), mask=mask)
        else:
            amax = tl.zeros([BLOCK], dtype=tl.float32)
            for k0 in range(0, K, BLOCK):
                offs = k0 + tl.arange(0, BLOCK)
                mask = offs < K
                x = tl.load(x_row + offs, mask=mask, other=0.0).to(tl.float32)
                sm = tl.load(smooth_ptr + offs, mask=mask, other=1.0).to(tl.float32)
                amax = tl.maximum(amax, tl.abs(tl.div_rn(x, sm)))
            scale = tl.maximum(tl.div_rn(tl.max(amax, axis=0), 127.0), 1e-8)
            tl.store(s_ptr + row, scale)
            for k0 in range(0, K, BLOCK):
                offs = k0 + tl.arange(0, BLOCK)
                mask = offs < K
                x = tl.load(x_row + offs, mask=mask, other=0.0).to(tl.float32)
                sm = tl.load(smooth_ptr + offs, mask=mask, other=1.0).to(tl.float32)
                q = _round_half_even(tl.div_rn(tl.div_rn(x, sm), scale))
                q = tl.minimum(tl.maximum(q, -127.0), 127.0)
                tl.store(q_ptr + row * K + offs, q.to(tl.int8), mask=mask)

    @triton.jit
    def _w8a8_kernel(
        xq_ptr,
        w_ptr,
        sx_ptr,
        sw_ptr,
        y_ptr,
        res_ptr,
        M,
        N,
        K,
        stride_ym,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
        HAS_RES: tl.constexpr,
        PDL: tl.constexpr,
    ):
        # Row tiles vary fastest: the programs running together share weight tiles, so at prefill sizes
        # each weight byte comes from DRAM about once while the (smaller) int8 x is re-read from L2.
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        offs_k = tl.arange(0, BLOCK_K)
        mask_m = offs_m < M
        mask_n = offs_n < N
        # The weight and its scales are constants of the graph: their first loads need not wait (PDL).
        sw = tl.load(sw_ptr + offs_n, mask=mask_n, other=0.0).to(tl.float32)
        w_ptrs = w_ptr + offs_n[:, None] * K + offs_k[None, :]
        wait_for_producer(PDL)
        y_offs = offs_m[:, None] * stride_ym + offs_n[None, :]
        ymask = mask_m[:, None] & mask_n[None, :]
        res = load_residual(res_ptr, y_offs, ymask, HAS_RES)
        x_ptrs = xq_ptr + offs_m[:, None] * K + offs_k[None, :]
        acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.int32)
        for k0 in range(0, K, BLOCK_K):
            kmask = (k0 + offs_k) < K
            x = tl.load(x_ptrs, mask=mask_m[:, None] & kmask[None, :], other=0)
            w = tl.load(w_ptrs, mask=mask_n[:, None] & kmask[None, :], other=0)
            acc += tl.dot(x, tl.trans(w), out_dtype=tl.int32)
            x_ptrs += BLOCK_K
            w_ptrs += BLOCK_K
        sx = tl.load(sx_ptr + offs_m, mask=mask_m, other=0.0)
        out = acc.to(tl.float32) * sx[:, None] * sw[None, :]  # the reference's order: (acc * sx) * scales
        store_output(y_ptr, y_ptr, y_ptr, res, y_offs, ymask, out, 0, 1, HAS_RES)


def quant_block(m: int, k: int) -> tuple[int, int]:
    """(values a pass step, warps) of the row quantization for x [m, k]."""
    if m >= PREFILL_ROWS and k > 4096:
        # Many long rows: throughput, not one row's latency. Whole 16384-wide blocks of 11008 values took
        # 153 us at 2048 rows on the H200 (a third of the lanes idle, the divisions issue-bound), 1024-wide
        # two-pass blocks 75 (benchmarks/w8a8_prefill.py --quant-rows).
        return 1024, 8
    # Whole rows in one block where they fit (each pass one load): with 1024-wide blocks the serial passes
    # took 6 us a call at K = 4096 and 16 at 11008 on the H200, a third of the GEMM's time.
    block = min(16384, triton.next_power_of_2(k))
    return block, max(4, min(16, block // 1024))


def quantize_rows(
    x: torch.Tensor, smooth: torch.Tensor, shape: tuple[int, int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] -> (int8 codes of x / smooth [M, K], fp32 per-row scales [M]), as `QLinear._w8a8_forward`;
    `shape` (block, warps) overrides `quant_block`."""
    assert triton is not None, "Triton is not installed"
    m, k = x.shape
    assert x.stride(1) == 1, "x must be dense in K"
    q = torch.empty(m, k, dtype=torch.int8, device=x.device)
    s = torch.empty(m, dtype=torch.float32, device=x.device)
    block, warps = shape or quant_block(m, k)
    _row_quant_kernel[(m,)](x, smooth, q, s, k, x.stride(0), BLOCK=block, num_warps=warps, **launch_kwargs(x))
    return q, s


def w8a8_linear(
    x: torch.Tensor,
    module: torch.nn.Module,
    residual: torch.Tensor | None = None,
    config: W8A8Config | None = None,
) -> torch.Tensor:
    """y [M, N] = the w8a8 QLinear's forward of x [M, K] (+ residual, added as `residual + y`), on the tensor cores."""
    assert w8a8_supported(module), "w8a8_linear takes QLinear format w8a8 with K a multiple of 32"
    m, k = x.shape
    assert k == module.in_features, f"x must be [M, {module.in_features}]"
    n = module.out_features
    x = x if x.stride(1) == 1 else x.contiguous()
    xq, sx = quantize_rows(x, module.smooth)
    check_residual(residual, (m, n), x.dtype)
    cfg = config or w8a8_choice(m, n, k)
    y = torch.empty(m, n, dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(m, cfg.block_m), triton.cdiv(n, cfg.block_n))
    _w8a8_kernel[grid](
        xq,
        module.qweight,
        sx,
        module.scales,
        y,
        residual if residual is not None else y,
        m,
        n,
        k,
        y.stride(0),
        BLOCK_M=cfg.block_m,
        BLOCK_N=cfg.block_n,
        BLOCK_K=cfg.block_k,
        HAS_RES=residual is not None,
        num_warps=cfg.num_warps,
        num_stages=cfg.num_stages,
        **launch_kwargs(x),
    )
    return y


__all__ = ["W8A8Config", "quantize_rows", "w8a8_choice", "w8a8_linear", "w8a8_supported"]
