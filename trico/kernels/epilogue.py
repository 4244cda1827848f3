"""The output step shared by the decode GEMV kernels: residual add and split-K reduction inside the kernel.

Split-K programs used to add fp32 partials into a zeroed buffer that a second kernel cast to the
activation dtype (two extra launches per projection: a memset and a cast). Here the partials meet
in a persistent fp32 workspace; each program then bumps a per-tile counter, and the program that
arrives last reads the sum, writes y and puts workspace and counter back to zero for the next
call. With `HAS_RES` the output is residual + y, rounded like the torch expression
`residual + (x @ W^T)` (the product rounded to the output dtype first), which saves the decoder
block's separate residual-add kernel. With `GATE` a fused gate/up projection whose row tiles
interleave gate and up rows (`tile_rows`) writes silu(gate) * up instead, which saves the SiLU
gate's kernel.
"""

from __future__ import annotations

import torch

from trico.kernels.qlinear import triton

if triton is not None:
    import triton.language as tl

    from trico.kernels.silu_gate import silu_times

    @triton.jit
    def load_residual(res_ptr, offs, mask, HAS_RES: tl.constexpr):
        """The residual tile (fp32) that `store_output` adds, loaded where the kernel starts so the load's
        latency hides behind the main loop instead of adding to the serial split-K tail (0.0 without one)."""
        if HAS_RES:
            return tl.load(res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        else:
            return 0.0

    @triton.jit
    def _write(y_ptr, res, offs, mask, out, HAS_RES: tl.constexpr):
        y = out.to(y_ptr.dtype.element_ty)
        if HAS_RES:
            y = (y.to(tl.float32) + res).to(y_ptr.dtype.element_ty)
        tl.store(y_ptr + offs, y, mask=mask)

    @triton.jit
    def tile_rows(pid_n, N, BLOCK_N: tl.constexpr, GATE: tl.constexpr):
        """Weight rows of row tile pid_n: consecutive, or with GATE gate row i and up row N/2 + i in turn."""
        j = tl.arange(0, BLOCK_N)
        if GATE:
            return pid_n * (BLOCK_N // 2) + j // 2 + (j % 2) * (N // 2)
        else:
            return pid_n * BLOCK_N + j

    @triton.jit
    def _write_gated(y_ptr, offs, mask, out, RANK: tl.constexpr):
        """silu(g) * u from out's last axis (g0, u0, g1, u1, ...), rounded as the separate kernel does it
        (silu_times on the projection's rounded output, as activation.silu_mul_packed)."""
        if RANK == 1:
            g, u = tl.split(tl.reshape(out, [out.shape[0] // 2, 2]))
        else:
            g, u = tl.split(tl.reshape(out, [out.shape[0], out.shape[1] // 2, 2]))
        dt = y_ptr.dtype.element_ty
        tl.store(y_ptr + offs, silu_times(g.to(dt), u.to(dt), dt), mask=mask)

    @triton.jit
    def _write_any(
        y_ptr, res, offs, mask, out, HAS_RES: tl.constexpr, GATE: tl.constexpr, gate_offs, gate_mask
    ):
        if GATE:
            _write_gated(y_ptr, gate_offs, gate_mask, out, GATE)
        else:
            _write(y_ptr, res, offs, mask, out, HAS_RES)

    @triton.jit
    def store_output(
        y_ptr,
        ws_ptr,
        cnt_ptr,
        res,
        offs,
        mask,
        acc,
        tile,
        SPLIT_K: tl.constexpr,
        HAS_RES: tl.constexpr,
        GATE: tl.constexpr = 0,
        gate_offs=None,
        gate_mask=None,
    ):
        """Write this program's fp32 acc (+ `res`, the tile from `load_residual`) to y (offsets `offs` of a
        tile numbered `tile`).

        With GATE (the rank of acc) the last axis of acc interleaves gate and up rows, and what is
        written is silu(gate) * up at `gate_offs` (see `_write_gated`).
        """
        if SPLIT_K == 1:
            _write_any(y_ptr, res, offs, mask, acc, HAS_RES, GATE, gate_offs, gate_mask)
        else:
            tl.atomic_add(ws_ptr + offs, acc, mask=mask, sem="relaxed")
            tl.debug_barrier()  # every thread's partial is in before the counter moves
            arrived = tl.atomic_add(cnt_ptr + tile, 1, sem="acq_rel")
            if arrived == SPLIT_K - 1:
                total = tl.load(ws_ptr + offs, mask=mask, other=0.0, cache_modifier=".cg")
                # Without this barrier the tensor-core kernel's sums came out wrong on the H200 (64-row
                # tiles, 4-5 of 30 cases; results/experiments/split-k-epilogue-variants-h200.txt). Why is
                # not understood (the SASS reads, then clears, each element in one thread); reading and
                # clearing with an atomic exchange was right too but 6-8% slower at batch 16.
                tl.debug_barrier()
                tl.store(ws_ptr + offs, tl.zeros_like(total), mask=mask)
                tl.atomic_xchg(cnt_ptr + tile, 0)
                _write_any(y_ptr, res, offs, mask, total, HAS_RES, GATE, gate_offs, gate_mask)


_WORKSPACES: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def split_workspace(device: torch.device, numel: int, tiles: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The zeroed fp32 workspace and tile counters for a split-K launch (reused; kernels leave them zeroed).

    Launches on one stream run one after another, so kernels of the same output size share them.
    """
    key = (device, numel, tiles)
    ws = _WORKSPACES.get(key)
    if ws is None:
        ws = _WORKSPACES[key] = (
            torch.zeros(numel, dtype=torch.float32, device=device),
            torch.zeros(tiles, dtype=torch.int32, device=device),
        )
    return ws


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


def whole_splits(words_per_row: int, split_k: int, block_w: int) -> tuple[int, int]:
    """Words per split and the number of splits once each split is rounded up to whole block_w steps."""
    per_split = _cdiv(_cdiv(words_per_row, split_k), block_w) * block_w
    return per_split, _cdiv(words_per_row, per_split)


def one_row_launch(
    x: torch.Tensor, n: int, words_per_row: int, block_n: int, block_w: int, split_k: int, gate: bool = False
) -> tuple[torch.Tensor, tuple[int, int], int, torch.Tensor, torch.Tensor]:
    """Output y [M, n] ([M, n / 2] with the SiLU gate; M: x's rows), grid, words per split and split-K
    workspace of a GEMV whose programs take block_n weight rows and whole steps of block_w words
    (splits may be fewer than asked once rounded)."""
    per_split, splits = whole_splits(words_per_row, split_k, block_w)
    y = torch.empty(x.shape[0], n // 2 if gate else n, dtype=x.dtype, device=x.device)
    grid = (n // block_n, splits)
    ws, cnt = split_workspace(x.device, x.shape[0] * n, grid[0]) if splits > 1 else (y, y)
    return y, grid, per_split, ws, cnt


def gate_rows_ok(n: int, block_n: int) -> bool:
    """Whether tiles of block_n rows can pair the gate and up halves of a fused [2H, K] projection (see `gate_rows`)."""
    return n % 2 == 0 and block_n % 2 == 0 and (n // 2) % (block_n // 2) == 0


def check_residual(residual: torch.Tensor | None, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """A residual must match the output exactly (shape, dtype, dense rows)."""
    if residual is not None:
        assert residual.shape == shape and residual.dtype == dtype and residual.is_contiguous(), (
            f"residual must be a contiguous {dtype} tensor of shape {shape}"
        )
