"""Instruction mix of a one-row GEMV's main loop, compiled for sm_90 on any machine (no GPU needed).

Triton compiles `gemv._gemv_kernel` ahead of time for an H100/H200 target (its bundled ptxas and
cuobjdump), the loop is found as the longest backward branch of the SASS, and the instructions in
it are counted per weight code of one thread. This is how the word GEMV was found to spend ~4.4
instructions per int8 code (3.79 after `gemv.LEAN_LOOP`), with two BAR.SYNCs per x column (the column's layout conversion
through shared memory): `docs/gpu-engine-history.md`, session of b9c375a. `--kernel half2` counts the f16x2
GEMV (`gemv_half2.py`) instead, and `--kernel tc` the tensor-core skinny GEMM (`qgemm_tc.py`) at 16 rows
of x, per weight (how the int8 loop was found to spend ~1 of its 4.5 instructions a weight converting a
bf16 x tile: session of d9898f6). `--cache DIR` lists the loops of every kernel a run compiled into a
Triton cache, with their barriers and shared-memory operations (on the GPU machine: what really ran).
Usage: python benchmarks/sass_mix.py [--kernel word|half2|tc] [--bits 8] [--block-n 32] [--block-w 64]
[--warps 2] [--group 128] [--rows 1|2|4 (half2)] [--block-k 256 --stages 3 --x-dtype bf16|fp16 (tc)]
| --cache DIR
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trico.kernels import gemv, gemv_half2  # noqa: E402

_POINTERS = {
    "x_ptr": "*bf16",
    "w_ptr": "*i32",
    "s_ptr": "*fp16",
    "m_ptr": "*fp16",
    "y_ptr": "*bf16",
    "ws_ptr": "*fp32",
    "cnt_ptr": "*i32",
    "res_ptr": "*bf16",
    "nw_ptr": "*bf16",
}


def compile_word_gemv(bits: int, block_n: int, block_w: int, warps: int, group: int, lean: bool = True):  # noqa: ANN201 - CompiledKernel
    """The word GEMV for sm_90 with one row scale (int8, group 0) or `group`-code scale groups; ints taken as multiples of 16 like a launch."""
    per_row = group == 0
    consts = {
        "PROLOGUE": 0,
        "NORM_K": 1,
        "BITS": bits,
        "OFFSET": 128.0 if bits == 8 else float(1 << (bits - 1)),
        "SIGNED8": bits == 8,
        "HAS_MIN": False,
        "PER_ROW": per_row,
        "WORDS_PER_GROUP": 1 if per_row else group // (32 // bits),
        "BLOCK_N": block_n,
        "BLOCK_W": block_w,
        "SPLIT_K": 1,
        "HAS_RES": False,
        "PDL": 0,
        "LEAN": lean,
    }
    return _compile(gemv._gemv_kernel, consts, warps)


def compile_half2(bits: int, block_n: int, block_w: int, warps: int, group: int, rows: int = 1):  # noqa: ANN201 - CompiledKernel
    """The f16x2 GEMV for sm_90 (symmetric codes, bf16 x, `rows` rows of x: 1, 2 or 4), one scale per row
    (group 0) or per `group` codes."""
    per_row = group == 0
    offset = 1 << (bits - 1) if bits == 4 else 1
    x_asm, x_cons = gemv_half2.x_pairs_asm(bits, False)
    dot_asm, dot_cons = gemv_half2.unit_dot_asm(bits, offset)
    dot2_asm, dot2_cons = gemv_half2.unit_dot_asm(bits, offset, 2) if rows > 1 else ("", "")
    consts = {
        "ROWS": rows,
        "DOT2_ASM": dot2_asm,
        "DOT2_CONS": dot2_cons,
        "BITS": bits,
        "OFFSET": float(offset),
        "PER_ROW": per_row,
        "QUADS_PER_GROUP": 1 if per_row else group // (4 * (32 // bits)),
        "BLOCK_N": block_n,
        "BLOCK_W": block_w,
        "SPLIT_K": 1,
        "HAS_RES": False,
        "X_ASM": x_asm,
        "X_CONS": x_cons,
        "DOT_ASM": dot_asm,
        "DOT_CONS": dot_cons,
        "PDL": 1,
        "GATE": False,
    }
    return _compile(gemv_half2._half2_kernel, consts, warps)


def compile_tc(bits: int, block_n: int, block_k: int, warps: int, stages: int, group: int, x_dtype: str):  # noqa: ANN201 - CompiledKernel
    """The tensor-core skinny GEMM (`qgemm_tc`) for sm_90 at 16 rows of x with its PTX unpacking: symmetric
    codes, one scale per row (group 0; block_k codes a step) or per `group` codes (a group a step); bits 16:
    bf16 weights (the dense skinny GEMM, no unpacking)."""
    from trico.kernels import qgemm_tc

    per_row = group == 0
    fp16 = bits == 8 or x_dtype == "fp16"
    offset = 128 if bits == 8 else 0 if bits == 16 else 1 << (bits - 1)
    word_order = bits in (2, 4) and block_n >= qgemm_tc.WORD_ORDER_ROWS
    asm, cons = (
        qgemm_tc.unpack_asm(bits, fp16, offset, bits == 8, word_order)
        if bits in (4, 8) or word_order
        else ("", "")
    )
    consts = {
        "BITS": bits,
        "SIGNED8": bits == 8,
        "OFFSET": float(offset),
        "HAS_MIN": False,
        "PER_ROW": per_row,
        "FP16": fp16,
        "BLOCK_M": 16,
        "BLOCK_N": block_n,
        "BLOCK_K": block_k if per_row else group,
        "GROUPS_PER_STEP": 1,
        "SPLIT_K": 1,
        "HAS_RES": False,
        "DOT_F32": False,
        "ASM": asm,
        "CONSTRAINTS": cons,
        "WORD_ORDER": word_order,
        "ROW_TILES": False,
        "PDL": 1,
    }
    pointers = {
        "x_ptr": f"*{'fp16' if x_dtype == 'fp16' else 'bf16'}",
        # 3-bit units are read as whole words
        "w_ptr": "*i32" if bits == 3 else f"*{x_dtype}" if bits == 16 else "*u8",
        "y_ptr": f"*{x_dtype}",
    }
    return _compile(qgemm_tc._tc_kernel, consts, warps, stages, pointers)


def _compile(kern, consts: dict, warps: int, stages: int = 2, pointers: dict | None = None):  # noqa: ANN001, ANN202 - JITFunction -> CompiledKernel
    """Compile a kernel for sm_90 with these constexprs; pointers and ints specialized like a launch."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    if not hasattr(kern, "cache_key"):
        raise RuntimeError("the kernels are in interpreter mode: run with TRITON_INTERPRET unset")
    types = {**_POINTERS, **(pointers or {})}
    sig = {
        n: "constexpr"
        if n in consts
        else types.get(n, "fp32" if n == "eps" else "i64" if n == "x_addr" else "i32")
        for n in kern.arg_names
    }
    # A launch specializes pointers and ints divisible by 16 (row strides, sizes): the loads vectorize.
    # (Not the tensor-core kernel's M, the rows of x, nor the f16x2 GEMV's gate/up half width.)
    attrs = {
        (i,): [["tt.divisibility", 16]]
        for i, n in enumerate(kern.arg_names)
        if sig[n] not in ("constexpr", "fp32") and n not in ("half", "M")
    }
    src = ASTSource(
        fn=kern,
        signature=sig,
        constexprs={(kern.arg_names.index(k),): v for k, v in consts.items()},
        attrs=attrs,
    )
    return triton.compile(
        src, target=GPUTarget("cuda", 90, 32), options={"num_warps": warps, "num_stages": stages}
    )


def sass(kernel) -> str:  # noqa: ANN001 - CompiledKernel
    """cuobjdump's SASS of the compiled kernel."""
    return cubin_sass(kernel.asm["cubin"])


def cubin_sass(cubin: bytes) -> str:
    """cuobjdump's SASS of a cubin (Triton's bundled cuobjdump)."""
    import triton

    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
    tool = os.path.join(os.path.dirname(triton.__file__), "backends/nvidia/bin/cuobjdump")
    try:
        return subprocess.run([tool, "-sass", f.name], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)


def loop_mix(text: str) -> collections.Counter:
    """Opcode counts of the longest loop: the instructions between a backward branch's target and the branch."""
    ops = []
    for line in text.splitlines():
        m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(@!?U?P\w+\s+)?([A-Z0-9_]+(\.[A-Z0-9_.]+)?)", line)
        if m:
            target = re.search(r"BRA\s+(0x[0-9a-f]+)", line)
            ops.append((int(m.group(1), 16), m.group(3), int(target.group(1), 16) if target else None))
    best: list = []
    for addr, _, target in ops:
        if target is not None and target < addr:
            body = [o for o in ops if target <= o[0] <= addr]
            best = body if len(body) > len(best) else best
    return collections.Counter(op for _, op, _ in best)


_SHARED = ("STS", "LDS", "STSM", "LDSM")


def cache_report(cache_dir: Path) -> list[dict]:
    """Every kernel a Triton cache holds (the ones a run compiled): its longest loop's length, and the
    barriers and shared-memory operations in that loop, i.e. layout conversions a one-row kernel should not
    need. One row per cubin, sorted by name."""
    rows = []
    for cubin in sorted(cache_dir.rglob("*.cubin")):
        mix = loop_mix(cubin_sass(cubin.read_bytes()))
        meta_file = cubin.with_suffix(".json")
        meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
        rows.append({
            "kernel": cubin.stem,
            "hash": cubin.parent.name[:10],
            "warps": meta.get("num_warps", 0),
            "smem": meta.get("shared", 0),
            "loop": sum(mix.values()),
            "bar": sum(n for op, n in mix.items() if op.startswith("BAR")),
            "shared": sum(n for op, n in mix.items() if op.split(".")[0] in _SHARED),
        })  # fmt: skip
    return sorted(rows, key=lambda r: (r["kernel"], r["hash"]))


def main(argv: list[str] | None = None) -> int:
    """Print the loop's instruction count per code and its opcodes, commonest first."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--kernel",
        default="word",
        choices=["word", "half2", "tc"],
        help="word GEMV, f16x2 GEMV, or the tensor-core skinny GEMM at 16 rows (tc: counts per weight)",
    )
    p.add_argument(
        "--bits",
        type=int,
        default=8,
        choices=[16, 8, 4, 3, 2, 1],
        help="bits per code (3: uint3, tc only; 1: tern1.6's bytes of 5 codes as 8 slots, tc only; 16: bf16 "
        "weights, tc only)",
    )
    p.add_argument("--block-n", type=int, default=32)
    p.add_argument("--block-w", type=int, default=64)
    p.add_argument("--warps", type=int, default=2)
    p.add_argument("--group", type=int, default=0, help="codes per scale group (0: one scale per row)")
    p.add_argument(
        "--old-loop", action="store_true", help="the loop before LEAN_LOOP (gemv.LEAN_LOOP = False)"
    )
    p.add_argument("--rows", type=int, default=1, choices=[1, 2, 4], help="rows of x (f16x2 GEMV only)")
    p.add_argument("--block-k", type=int, default=256, help="tc: codes a step with one scale per row")
    p.add_argument("--stages", type=int, default=3, help="tc: pipeline stages")
    p.add_argument(
        "--x-dtype", default="bf16", choices=["bf16", "fp16"], help="tc: x's dtype (8-bit codes use fp16)"
    )
    p.add_argument(
        "--cache",
        type=Path,
        help="instead: report the loop of every kernel in this Triton cache directory (e.g. ~/.triton/cache "
        "after a run), its barriers and shared-memory operations",
    )
    args = p.parse_args(argv)
    if args.cache is not None:
        return _print_cache(args.cache)
    if args.kernel == "half2" and args.bits in (8, 16):
        p.error("the f16x2 GEMV reads 4- and 2-bit codes only")
    if args.kernel == "word" and args.bits == 16:
        p.error("--bits 16 (bf16 weights) is for --kernel tc")
    try:
        if args.kernel == "tc":
            return _print_tc(args)
        if args.kernel == "half2":
            kernel = compile_half2(args.bits, args.block_n, args.block_w, args.warps, args.group, args.rows)
        else:
            kernel = compile_word_gemv(
                args.bits, args.block_n, args.block_w, args.warps, args.group, not args.old_loop
            )
        mix = loop_mix(sass(kernel))
    except (ImportError, OSError, subprocess.CalledProcessError, RuntimeError) as e:
        print(f"sass_mix: could not compile for sm_90 here: {e}", file=sys.stderr)
        return 2
    # codes per thread and tile (times the rows of x each code meets: per code and row below)
    per_tile = args.block_n * args.block_w * (32 // args.bits) / (32 * args.warps) * args.rows
    # the word GEMV: one FFMA per code, so how many tiles one pass of its loop takes; half2: one tile
    tiles = 1 if args.kernel == "half2" else max(1, round(mix["FFMA"] / per_tile))
    codes = per_tile * tiles
    total = sum(mix.values())
    print(
        f"{args.kernel} {args.bits}-bit, {args.block_n}x{args.block_w} words, {args.warps} warps, group {args.group or 'row'}: "
        f"loop {total} instructions for {codes:.0f} codes per thread ({tiles} tiles) = {total / codes:.2f} per code"
        + (f" and row of x ({args.rows} rows)" if args.rows > 1 else "")
    )
    for op, n in mix.most_common():
        print(f"  {n:5d}  {op}")
    return 0


def _print_tc(args: argparse.Namespace) -> int:
    """The tensor-core kernel's loop (one K step of a tile) per weight of a thread."""
    kernel = compile_tc(
        args.bits, args.block_n, args.block_k, args.warps, args.stages, args.group, args.x_dtype
    )
    mix = loop_mix(sass(kernel))
    step = args.block_k if args.group == 0 else args.group
    weights = args.block_n * step / (32 * args.warps)
    total = sum(mix.values())
    print(
        f"tc {args.bits}-bit, {args.block_n}x{step} tile, {args.warps} warps, {args.stages} stages, x {args.x_dtype}, "
        f"group {args.group or 'row'}: loop {total} instructions for {weights:.0f} weights per thread = "
        f"{total / weights:.2f} per weight"
    )
    for op, n in mix.most_common():
        print(f"  {n:5d}  {op}")
    return 0


def _print_cache(cache_dir: Path) -> int:
    """The --cache table."""
    if not cache_dir.is_dir():
        print(f"sass_mix: no such directory: {cache_dir}", file=sys.stderr)
        return 1
    try:
        rows = cache_report(cache_dir)
    except (ImportError, OSError, subprocess.CalledProcessError) as e:
        print(f"sass_mix: could not disassemble here: {e}", file=sys.stderr)
        return 2
    print(f"{'kernel':32s} {'hash':10s} {'warps':>5s} {'smem B':>7s} {'loop':>5s} {'BAR':>4s} {'shared':>6s}")
    for r in rows:
        print(f"{r['kernel']:32s} {r['hash']:10s} {r['warps']:5d} {r['smem']:7d} {r['loop']:5d} {r['bar']:4d} "
              f"{r['shared']:6d}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
