"""The SiLU gate's arithmetic, silu(g) * u rounded like torch's `F.silu(g) * u`: one Triton function for
every kernel that applies it (its own kernels in activation.py, the word GEMV's prologue, the f16x2
GEMV's gate epilogue), so all of them give the same bits."""

from __future__ import annotations

from trico.kernels.qlinear import triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def silu_times(g, u, DTYPE: tl.constexpr):
        """silu(g) * u in DTYPE from g and u already rounded to it: silu rounded first, as torch does.

        The division is the 2-ulp one (as the exp): a full-precision fp32 division is a long
        instruction sequence, and a prologue repeats this op in every program of its GEMV.
        """
        gf = g.to(tl.float32)
        s = tl.fdiv(gf, 1.0 + tl.exp(-gf)).to(DTYPE)
        return (s.to(tl.float32) * u.to(tl.float32)).to(DTYPE)
