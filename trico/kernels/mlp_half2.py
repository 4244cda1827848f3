"""A decoder block's MLP at batch 1 in one persistent launch: gate/up with the SiLU gate, a grid-wide
barrier, then the down projection with the residual added (both through the f16x2 GEMV's work items).

Why: as two grids, the down projection's programs can only request their first weight tile once
slots free up behind the gate/up grid, and they all start together after its last program. Here
every program, done with its gate/up work, requests its first down-projection tile and then waits
at the barrier (`grid_sync.grid_barrier`), so that latency overlaps the gate/up tail; the second
launch and its ramp-up go too. The programs stay resident for both phases, so the grid is sized
to what the device holds at once (`grid_sync.resident_programs`) and each phase's work items (row
tile x K split) are dealt out over it. Under the Triton interpreter the grid is one program.

The arithmetic is the two-kernel path's: the same items, fp32 split-K sums (in a different order
when programs race) and the same roundings of the gated product and of residual + y.
"""

from __future__ import annotations

import torch

from trico.kernels.epilogue import check_residual, gate_rows_ok, split_workspace, whole_splits
from trico.kernels.gemv_half2 import (
    HALF2_BITS,
    Half2Config,
    half2_aligned,
    half2_fits,
    half2_supported,
    unit_dot_asm,
    x_pairs_asm,
)
from trico.kernels.grid_sync import barrier_buffer, resident_programs
from trico.kernels.pdl import launch_kwargs, wait_for_producer
from trico.kernels.qlinear import INTERPRET, PackedWeight, triton

if triton is not None:
    import triton.language as tl

    from trico.kernels.gemv_half2 import first_words, half2_item
    from trico.kernels.grid_sync import grid_barrier, grid_exit

    @triton.jit
    def _phase(
        x_ptr, x_addr, w_ptr, s_ptr, y_ptr, ws_ptr, cnt_ptr, res_ptr, N, KW, WORDS_PER_SPLIT, stride_wn,
        stride_sn, TILES, ITEMS, u_first, BITS: tl.constexpr, OFFSET: tl.constexpr, PER_ROW: tl.constexpr,
        QUADS_PER_GROUP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_W: tl.constexpr, SPLIT_K: tl.constexpr,
        HAS_RES: tl.constexpr, X_ASM: tl.constexpr, X_CONS: tl.constexpr, DOT_ASM: tl.constexpr,
        DOT_CONS: tl.constexpr, GATE: tl.constexpr, STRIDED: tl.constexpr,
    ):  # fmt: skip
        """This program's work items of one projection: item pid (its first words `u_first` already
        requested), then with STRIDED every grid-size stride after it (without, the grid covers the items:
        the loop's second copy of the item's code took sm_90 builds from 168 to 254 registers a thread)."""
        pid = tl.program_id(0)
        grid = tl.num_programs(0)
        if pid < ITEMS:
            half2_item(
                x_ptr, x_addr, w_ptr, s_ptr, y_ptr, ws_ptr, cnt_ptr, res_ptr, 1, N, KW, WORDS_PER_SPLIT, 0,
                stride_wn, stride_sn, pid % TILES, pid // TILES, u_first, BITS, OFFSET, PER_ROW, QUADS_PER_GROUP,
                BLOCK_N, BLOCK_W, 1, SPLIT_K, HAS_RES, X_ASM, X_CONS, DOT_ASM, DOT_CONS, "", "", GATE,
            )  # fmt: skip
        if STRIDED:
            for item in range(pid + grid, ITEMS, grid):
                u = first_words(w_ptr, N, WORDS_PER_SPLIT, stride_wn, item % TILES, item // TILES, BLOCK_N, BLOCK_W,
                                GATE)  # fmt: skip
                half2_item(
                    x_ptr, x_addr, w_ptr, s_ptr, y_ptr, ws_ptr, cnt_ptr, res_ptr, 1, N, KW, WORDS_PER_SPLIT, 0,
                    stride_wn, stride_sn, item % TILES, item // TILES, u, BITS, OFFSET, PER_ROW, QUADS_PER_GROUP,
                    BLOCK_N, BLOCK_W, 1, SPLIT_K, HAS_RES, X_ASM, X_CONS, DOT_ASM, DOT_CONS, "", "", GATE,
                )  # fmt: skip

    @triton.jit
    def _mlp_kernel(
        x_ptr, x_addr, act_ptr, act_addr, res_ptr, y_ptr, wa_ptr, sa_ptr, wsa_ptr, cnta_ptr, wb_ptr, sb_ptr, wsb_ptr,
        cntb_ptr, bar_ptr, NA, KWA, WPS_A, stride_wa, stride_sa, TILES_A, ITEMS_A, NB, KWB, WPS_B, stride_wb,
        stride_sb, TILES_B, ITEMS_B, BITS: tl.constexpr, OFFSET: tl.constexpr, PER_ROW: tl.constexpr,
        QUADS_PER_GROUP: tl.constexpr, BLOCK_NA: tl.constexpr, BLOCK_NB: tl.constexpr, BLOCK_WA: tl.constexpr,
        BLOCK_WB: tl.constexpr, SPLIT_A: tl.constexpr, SPLIT_B: tl.constexpr, X_ASM: tl.constexpr, X_ASM_L2: tl.constexpr,
        X_CONS: tl.constexpr, DOT_ASM: tl.constexpr, DOT_CONS: tl.constexpr, STRIDED: tl.constexpr,
        PDL: tl.constexpr,
    ):  # fmt: skip
        # Phase A: act = silu(x @ gate^T) * (x @ up^T) (tiles pair gate and up rows); phase B:
        # y = res + act @ down^T. act is read from L2 (X_ASM_L2): other programs wrote it in this launch.
        pid = tl.program_id(0)
        grid = tl.num_programs(0)
        first_a = tl.minimum(pid, ITEMS_A - 1)
        u = first_words(
            wa_ptr, NA, WPS_A, stride_wa, first_a % TILES_A, first_a // TILES_A, BLOCK_NA, BLOCK_WA, True
        )
        wait_for_producer(PDL)
        _phase(
            x_ptr, x_addr, wa_ptr, sa_ptr, act_ptr, wsa_ptr, cnta_ptr, act_ptr, NA, KWA, WPS_A, stride_wa, stride_sa,
            TILES_A, ITEMS_A, u, BITS, OFFSET, PER_ROW, QUADS_PER_GROUP, BLOCK_NA, BLOCK_WA, SPLIT_A, False, X_ASM,
            X_CONS, DOT_ASM, DOT_CONS, True, STRIDED,
        )  # fmt: skip
        first_b = tl.minimum(pid, ITEMS_B - 1)
        u = first_words(
            wb_ptr, NB, WPS_B, stride_wb, first_b % TILES_B, first_b // TILES_B, BLOCK_NB, BLOCK_WB, False
        )
        grid_barrier(bar_ptr, grid)
        _phase(
            act_ptr, act_addr, wb_ptr, sb_ptr, y_ptr, wsb_ptr, cntb_ptr, res_ptr, NB, KWB, WPS_B, stride_wb, stride_sb,
            TILES_B, ITEMS_B, u, BITS, OFFSET, PER_ROW, QUADS_PER_GROUP, BLOCK_NB, BLOCK_WB, SPLIT_B, True, X_ASM_L2,
            X_CONS, DOT_ASM, DOT_CONS, False, STRIDED,
        )  # fmt: skip
        grid_exit(bar_ptr, grid)


def mlp_half2_fits(
    gate_up: PackedWeight, down: PackedWeight, gate_cfg: Half2Config, down_cfg: Half2Config
) -> bool:
    """Whether one launch can run this MLP: both weights the f16x2 GEMV's, coded alike, shapes chained."""
    return (
        half2_supported(gate_up)
        and half2_supported(down)
        and (gate_up.fmt, gate_up.offset) == (down.fmt, down.offset)
        and _scale_groups(gate_up) == _scale_groups(down)
        and down.k == gate_up.n // 2
        and half2_fits(gate_up, gate_cfg)
        and half2_fits(down, down_cfg)
        and gate_cfg.num_warps == down_cfg.num_warps
        and gate_rows_ok(gate_up.n, gate_cfg.block_n)
    )


def _scale_groups(pw: PackedWeight) -> int:
    """Codes per scale group, 0 for one scale per row (the kernel's two phases share this constexpr)."""
    return 0 if pw.scale_mode in (0, 1) else pw.group_size


_GRIDS: dict[tuple, tuple[int, bool]] = {}


def mlp_half2(
    x: torch.Tensor,
    residual: torch.Tensor,
    gate_up: PackedWeight,
    gate_cfg: Half2Config,
    down: PackedWeight,
    down_cfg: Half2Config,
) -> torch.Tensor:
    """residual + (silu(x @ gate^T) * (x @ up^T)) @ down^T for one row x [1, K], in one persistent launch.

    gate_up is the fused [gate; up] projection [2H, K], down [N, H]; both take their f16x2 GEMV launch
    shapes (the grid is one wave whatever the splits: items beyond it are dealt out in turn).
    """
    assert triton is not None, "Triton is not installed"
    assert mlp_half2_fits(gate_up, down, gate_cfg, down_cfg), (
        f"the one-launch MLP does not take {gate_up.fmt} [{gate_up.n}, {gate_up.k}] -> {down.fmt} "
        f"[{down.n}, {down.k}] with {gate_cfg} / {down_cfg}"
    )
    assert x.dim() == 2 and x.shape == (1, gate_up.k) and x.stride(1) == 1 and half2_aligned(x), (
        f"x must be one dense, 16-byte aligned row [1, {gate_up.k}]"
    )
    assert x.dtype in (torch.bfloat16, torch.float16), f"x must be bf16 or fp16, not {x.dtype}"
    check_residual(residual, (1, down.n), x.dtype)
    bits = HALF2_BITS[gate_up.fmt]
    kwa, kwb = gate_up.k * bits // 32, down.k * bits // 32
    wps_a, split_a = whole_splits(kwa, gate_cfg.split_k, gate_cfg.block_w)
    wps_b, split_b = whole_splits(kwb, down_cfg.split_k, down_cfg.block_w)
    tiles_a, tiles_b = gate_up.n // gate_cfg.block_n, down.n // down_cfg.block_n
    act = torch.empty(1, gate_up.n // 2, dtype=x.dtype, device=x.device)
    y = torch.empty(1, down.n, dtype=x.dtype, device=x.device)
    wsa, cnta = split_workspace(x.device, gate_up.n, tiles_a) if split_a > 1 else (act, act)
    wsb, cntb = split_workspace(x.device, down.n, tiles_b) if split_b > 1 else (y, y)
    words_a = gate_up.units.view(torch.uint8).view(torch.int32)
    words_b = down.units.view(torch.uint8).view(torch.int32)
    per_row = gate_up.scale_mode in (0, 1)
    fp16 = x.dtype == torch.float16
    x_asm, x_cons = ("", "") if INTERPRET else x_pairs_asm(bits, fp16)
    x_asm_l2 = "" if INTERPRET else x_pairs_asm(bits, fp16, cache="cg")[0]
    dot_asm, dot_cons = ("", "") if INTERPRET else unit_dot_asm(bits, gate_up.offset)
    args = (
        x, x.data_ptr(), act, act.data_ptr(), residual, y, words_a, gate_up.scales, wsa, cnta, words_b, down.scales,
        wsb, cntb, barrier_buffer(x.device), gate_up.n, kwa, wps_a, words_a.stride(0), gate_up.stride_sn, tiles_a,
        tiles_a * split_a, down.n, kwb, wps_b, words_b.stride(0), down.stride_sn, tiles_b, tiles_b * split_b,
    )  # fmt: skip
    consts = dict(
        BITS=bits,
        OFFSET=float(gate_up.offset),
        PER_ROW=per_row,
        QUADS_PER_GROUP=1 if per_row else gate_up.group_size // (4 * (32 // bits)),
        BLOCK_NA=gate_cfg.block_n,
        BLOCK_NB=down_cfg.block_n,
        BLOCK_WA=gate_cfg.block_w,
        BLOCK_WB=down_cfg.block_w,
        SPLIT_A=split_a,
        SPLIT_B=split_b,
        X_ASM=x_asm,
        X_ASM_L2=x_asm_l2,
        X_CONS=x_cons,
        DOT_ASM=dot_asm,
        DOT_CONS=dot_cons,
        num_warps=gate_cfg.num_warps,
        **launch_kwargs(x),
    )
    grid, strided = _grid(args, consts, max(tiles_a * split_a, tiles_b * split_b), x.device)
    _mlp_kernel[(grid,)](*args, STRIDED=strided, **consts)
    return y


def _grid(args: tuple, consts: dict, items: int, device: torch.device) -> tuple[int, bool]:
    """Programs of the launch (all resident at once; one under the interpreter) and whether each takes
    several items of a phase (STRIDED: only where the device holds fewer programs than a phase has items)."""
    if INTERPRET:
        return 1, True
    key = (device, items) + tuple(
        sorted((k, v) for k, v in consts.items() if not k.startswith(("X_", "DOT_")))
    )
    chosen = _GRIDS.get(key)
    if chosen is None:
        warps = consts["num_warps"]
        one_wave = resident_programs(
            _mlp_kernel.warmup(*args, grid=(1,), STRIDED=False, **consts), device, warps
        )
        if items <= one_wave:
            chosen = items, False
        else:
            strided = _mlp_kernel.warmup(*args, grid=(1,), STRIDED=True, **consts)
            chosen = max(1, resident_programs(strided, device, warps)), True
        _GRIDS[key] = chosen
    return chosen
