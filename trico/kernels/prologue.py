"""Producer ops fused into the one-row GEMV that consumes them: RMSNorm or the SiLU gate, applied to x as it loads.

At batch 1 a Llama block launched ten kernels, three of them tiny elementwise ones (two RMSNorms
and the SiLU gate, ~2 us each on the H200, `results/profile-decode-b1-pdl-h200.json`) whose whole
job is to make the next projection's x. Here the word GEMV (`gemv.py`) makes it itself:

- `SILU`: x is the fused gate/up output [1, 2K]; every x element the kernel loads becomes
  silu(g) * u, from the two halves, rounded like `silu_mul_packed` (no extra memory traffic: the
  kernel reads 2K values instead of the K it would read from the separate kernel's output);
- `NORM`: x is the residual stream h [1, K]; each program first sums h^2 over the whole row in one
  load (h is a few KiB and sits in L2), then every x element becomes w * round(h * rstd), rounded
  like `rmsnorm`.

Every program repeats the op for its slice of K (N / BLOCK_N times over), so it only pays where the
kernel has issue slots to spare: `dispatch.PROLOGUE_BITS` holds where it measured faster. The
tensor-core kernel has none: a version with the op inside measured slower (bf16 decode 3906 -> 4591
us a step with the gate, 3952 with the norm, `results/experiments/profile-prologues-b1-h200.json`;
not profiled further, our guess is that its loop's loads were no longer pipelined). The result is
bit-identical to the two-kernel path except where the sum of squares, added in another order, moves
rstd by an ulp.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from trico.kernels.qlinear import triton

if triton is not None:
    import triton.language as tl

    from trico.kernels.silu_gate import silu_times

NONE, NORM, SILU = 0, 1, 2
"""Values of the kernels' PROLOGUE constexpr."""

MAX_NORM_WIDTH = 16384
"""Widest row a consumer normalizes itself (the row is held in registers for its sum of squares)."""

KINDS = {NORM, SILU}
"""The prologues dispatch hands to consumer kernels (an A/B knob: benchmarks/profile_decode.py --prologues)."""


@dataclass(frozen=True)
class Prologue:
    """What a consumer kernel does to x as it loads it: RMSNorm (with `weight`, `eps`) or the SiLU gate."""

    kind: int
    weight: torch.Tensor | None = None
    eps: float = 0.0

    def fits(self, rows: int, x: torch.Tensor) -> bool:
        """Whether a consumer kernel should apply it to `rows` rows of x (else `apply` runs first)."""
        if rows != 1 or self.kind not in KINDS or x.dtype not in (torch.bfloat16, torch.float16):
            return False
        if self.kind == NORM:
            ok_weight = self.weight.dtype == x.dtype and self.weight.is_contiguous()
            return ok_weight and x.shape[-1] <= MAX_NORM_WIDTH
        return True

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The op on its own: the separate Triton kernel on the fused path, torch elsewhere."""
        from trico.kernels import fused_path

        if not fused_path(x):
            return prologue_reference(x, self)
        if self.kind == NORM:
            from trico.kernels.rmsnorm import rmsnorm

            return rmsnorm(x.contiguous(), self.weight, self.eps)[0]
        from trico.kernels.activation import silu_mul_packed

        return silu_mul_packed(x.contiguous())

    def launch_args(self, x: torch.Tensor) -> dict:
        """Kernel arguments: the norm weight pointer, eps, the gate/up half width and the PROLOGUE constexpr."""
        return {
            "nw_ptr": self.weight if self.kind == NORM else x,
            "eps": float(self.eps),
            "half": x.shape[-1] // 2 if self.kind == SILU else 0,  # the up half of a gate/up row
            "PROLOGUE": self.kind,
            "NORM_K": triton.next_power_of_2(x.shape[-1]) if self.kind == NORM else 1,
        }


def norm_prologue(norm: torch.nn.Module) -> Prologue:
    """The prologue of an RMSNorm module (its weight and eps)."""
    return Prologue(NORM, norm.weight, norm.eps)


SILU_GATE = Prologue(SILU)
"""The SiLU-gate prologue (no parameters)."""


def no_prologue_args(x: torch.Tensor) -> dict:
    """Kernel arguments for a launch without a prologue."""
    return {"nw_ptr": x, "eps": 0.0, "half": 0, "PROLOGUE": NONE, "NORM_K": 1}


def prologue_reference(x: torch.Tensor, prologue: Prologue | None) -> torch.Tensor:
    """x as the consumer sees it, in plain torch (the kernels' tests compare against this)."""
    if prologue is None:
        return x
    if prologue.kind == NORM:
        from trico.kernels.rmsnorm import rmsnorm_reference

        return rmsnorm_reference(x, prologue.weight, prologue.eps)[0]
    from trico.kernels.activation import silu_mul_reference

    g, u = x.chunk(2, dim=-1)
    return silu_mul_reference(g, u)


if triton is not None:

    @triton.jit
    def row_rstd(x_ptr, K, eps, NORM_K: tl.constexpr):
        """1 / sqrt(mean(x^2) + eps) of the row x [K] (fp32), from one load of the whole row (NORM_K >= K)."""
        offs = tl.arange(0, NORM_K)
        v = tl.load(x_ptr + offs, mask=offs < K, other=0.0).to(tl.float32)
        return 1.0 / tl.sqrt(tl.sum(v * v, axis=0) / K + eps)

    @triton.jit
    def load_raw(x_ptrs, mask, nw_ptrs, half, PROLOGUE: tl.constexpr):
        """The loads of x's prologue: (x, the norm weight or the up half), so they can be issued a step early."""
        x = tl.load(x_ptrs, mask=mask, other=0.0)
        if PROLOGUE == 1:
            aux = tl.load(nw_ptrs, mask=mask, other=0.0)
        elif PROLOGUE == 2:
            aux = tl.load(x_ptrs + half, mask=mask, other=0.0)
        else:
            aux = x
        return x, aux

    @triton.jit
    def finish_input(x, aux, rstd, PROLOGUE: tl.constexpr):
        """x put through the prologue (rstd broadcasts over x's rows), rounded like the separate kernels."""
        if PROLOGUE == 1:  # RMSNorm: round the normalized value, then the product with the weight
            n = (x.to(tl.float32) * rstd).to(x.dtype)
            x = (n.to(tl.float32) * aux.to(tl.float32)).to(x.dtype)
        elif PROLOGUE == 2:  # SiLU gate
            x = silu_times(x, aux, x.dtype)
        return x
