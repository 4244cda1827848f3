"""Decode-kernel shoot-out on the GPU: the FMA kernel (`qlinear.qmm`), the tensor-core kernel
(`qgemm_tc.tc_qmm`) and cuBLAS, per weight format, layer shape and row count, over every launch shape.

Each variant is timed as a CUDA graph of launches over enough copies of the weight to overflow the
L2 cache (so GB/s is DRAM bandwidth, and Python launch overhead is not in the number), median of
replays. Usage: python benchmarks/gemv_variants.py [--quick] [--out FILE.json]; the table prints last.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.kernels import make_weight, nbytes  # noqa: E402
from trico.kernels import gemv as gw  # noqa: E402
from trico.kernels import gemv_a8 as ga  # noqa: E402
from trico.kernels import gemv_half2 as gh  # noqa: E402
from trico.kernels import qgemm_tc as tc  # noqa: E402
from trico.kernels import qlinear as qk  # noqa: E402
from trico.kernels.epilogue import whole_splits  # noqa: E402

FORMATS = [  # (label, fmt, group (0 per tensor, -1 per row), symmetric)
    ("bf16", "bf16", 0, True),
    ("int8", "int8", -1, True),
    ("int4-g128", "uint4", 128, True),
    ("int4-g128-asym", "uint4", 128, False),
    ("int3-g128", "uint3", 128, True),
    ("int3-g128-asym", "uint3", 128, False),
    ("tern2", "tern2", 0, True),
    ("tern1.6", "tern1.6", 0, True),
]
SHAPES = [(4096, 4096), (12288, 4096), (22016, 4096), (4096, 11008), (28672, 4096), (4096, 14336)]
L2_BYTES = 50 * 2**20


def graph_ms(calls: list, replays: int = 7) -> float:
    """Median ms of one replay of a CUDA graph holding the calls (after a warm-up)."""
    for c in calls:
        c()
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for c in calls:
            c()
    graph.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(replays):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        graph.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def weights_beyond_l2(fmt: str, group: int, sym: bool, n: int, k: int) -> list[qk.PackedWeight]:
    """Enough random copies of one weight shape (at least two) that cycling through them overflows the L2
    cache four times, so a timing reads DRAM."""
    first = make_weight(fmt, group, sym, n, k)
    copies = max(2, math.ceil(4 * L2_BYTES / nbytes(first)))
    return [first] + [make_weight(fmt, group, sym, n, k) for _ in range(1, copies)]


def run_case(
    label: str, fmt: str, group: int, sym: bool, n: int, k: int, m: int, quick: bool, families: set[str]
) -> dict:
    """Time every variant of one case; returns the best of each kernel family."""
    pws = weights_beyond_l2(fmt, group, sym, n, k)
    first, copies = pws[0], len(pws)
    wbytes = nbytes(first)
    xs = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
    ref = xs[0].float() @ qk.dequantize(first, torch.float32).t()  # dequantize is exact (tests/kernels)
    out: dict = {"label": label, "fmt": fmt, "n": n, "k": k, "m": m, "weight_bytes": wbytes, "copies": copies}

    def per_call_ms(fn) -> float:  # noqa: ANN001
        return graph_ms([lambda i=i: fn(xs[i], pws[i]) for i in range(copies)]) / copies

    def rel(y: torch.Tensor) -> float:
        return float((y.float() - ref.float()).norm() / ref.float().norm())

    if fmt == "bf16":
        out["cublas_ms"] = per_call_ms(lambda x, pw: torch.nn.functional.linear(x, pw.units))
    best_old = (math.inf, None)
    for cfg in qk.candidates(m)[: 2 if quick else None] if "qmm" in families else []:
        try:
            ms = per_call_ms(lambda x, pw, c=cfg: qk.qmm(x, pw, c))
        except Exception as exc:  # noqa: BLE001 - a shape the compiler refuses is skipped, and said
            print(f"  qmm {cfg} failed: {type(exc).__name__}", flush=True)
            continue
        best_old = min(best_old, (ms, cfg), key=lambda t: t[0])
    if best_old[1] is not None:
        out["qmm_ms"], out["qmm_cfg"] = best_old[0], str(best_old[1])
        out["qmm_rel_err"] = rel(qk.qmm(xs[0], pws[0], best_old[1]))

    def sweep(cands: list, fn, label: str) -> list[dict]:  # noqa: ANN001 - fn(x, pw, config)
        rows = []
        for c in cands[:: 4 if quick else 1]:
            try:
                ms = per_call_ms(lambda x, pw, c=c: fn(x, pw, c))
            except Exception as exc:  # noqa: BLE001 - a shape the compiler refuses is skipped, and said
                print(f"  {label} {c} failed: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
                continue
            rows.append({"cfg": list(dataclasses.astuple(c)), "ms": ms})
        return sorted(rows, key=lambda r: r["ms"])

    cands = tc.tc_candidates(first, m) if "tc" in families else []
    if "tc-compact" in families:
        cands = compact_tc_candidates(first)
    if "tc-split" in families:
        cands = split_tc_candidates(first, m)
    if "tc-steps" in families:
        cands = step_tc_candidates(first, m)
    if "tc-dense" in families and fmt == "bf16":
        cands = dense_tc_candidates(first, m)
    rows = sweep(cands, tc.tc_qmm, "tc")
    out["tc_all"] = rows[:8] if "tc-compact" in families else rows
    if ("tc-dense" in families and fmt == "bf16") or families & {"tc-split", "tc-steps"}:
        from trico.kernels.dispatch import tensor_core_choice

        chosen = tensor_core_choice(first, m)
        out["dispatched_kernel"], out["dispatched_cfg"] = "tc_qmm", list(dataclasses.astuple(chosen))
        out["dispatched_ms"] = per_call_ms(lambda x, pw: tc.tc_qmm(x, pw, chosen))
    if rows and fmt != "bf16":  # the best shape again with Triton's tensor-op unpacking instead of the PTX
        tc.ASM_UNPACK = False
        try:
            out["tc_noasm_ms"] = per_call_ms(lambda x, pw: tc.tc_qmm(x, pw, tc.TcConfig(*rows[0]["cfg"])))
        finally:
            tc.ASM_UNPACK = True
    if m == 1 and families & {"a8", "a8-chosen"} and ga.a8_supported(first):
        from trico.kernels.dispatch import a8_choice

        chosen = a8_choice(first)
        if "a8" in families:
            cands = [c for c in ga.a8_candidates(first) if ga.a8_fits(first, c)]
        else:  # the dispatched shape with and without the software prefetch
            cands = [chosen, dataclasses.replace(chosen, prefetch=not chosen.prefetch)] if chosen else []
        arows = sweep(cands, ga.gemv_a8, "a8")
        out["a8_all"] = arows[:8] if "a8" in families else arows
        if arows:
            out["a8_ms"], out["a8_cfg"] = arows[0]["ms"], arows[0]["cfg"]
            out["a8_rel_err"] = rel(ga.gemv_a8(xs[0], pws[0], ga.A8Config(*arows[0]["cfg"])))
    if m == 1 and "gemv-lean-ab" in families and gw.gemv_supported(first):
        from trico.kernels.dispatch import word_gemv_choice

        chosen = word_gemv_choice(first, 1)
        if chosen is not None:  # the dispatched shape with the lean loop and the one before it
            for lean in (True, False):
                gw.LEAN_LOOP = lean
                try:
                    timed = sweep([chosen], gw.gemv_words, "gemv")
                    tag = "lean" if lean else "old"
                    if timed:
                        out[f"gemv_{tag}_ms"] = timed[0]["ms"]
                        out[f"gemv_{tag}_rel_err"] = rel(gw.gemv_words(xs[0], pws[0], chosen))
                finally:
                    gw.LEAN_LOOP = True
    if m == 1 and families & {"gemv", "gemv-chosen"} and gw.gemv_supported(first):
        from trico.kernels.dispatch import word_gemv_choice

        cands = gw.gemv_candidates(first) if "gemv" in families else [word_gemv_choice(first, 1)]
        grows = sweep(cands, gw.gemv_words, "gemv")
        out["gemv_all"] = grows[:8]
        if grows:
            out["gemv_ms"], out["gemv_cfg"] = grows[0]["ms"], grows[0]["cfg"]
            out["gemv_rel_err"] = rel(gw.gemv_words(xs[0], pws[0], gw.GemvWordConfig(*grows[0]["cfg"])))
    if m <= gh.MAX_ROWS and families & {"half2", "half2-wave"} and gh.half2_supported(first):
        cands = gh.half2_candidates(first) if "half2" in families else half2_wave_candidates(first)
        hrows = sweep(cands, gh.gemv_half2, "half2")
        out["half2_all"] = hrows[:8] if "half2" in families else hrows
        if hrows:
            out["half2_ms"], out["half2_cfg"] = hrows[0]["ms"], hrows[0]["cfg"]
            out["half2_rel_err"] = rel(gh.gemv_half2(xs[0], pws[0], gh.Half2Config(*hrows[0]["cfg"])))
    # dispatched: the choice without the f16x2 GEMV (dispatch.HALF2_GEMV off), what that kernel replaced
    if "dispatched" in families and fmt != "bf16":
        from trico.kernels import dispatch

        tc_cfg = dispatch.tensor_core_choice(first, m)
        word_cfg = dispatch.word_gemv_choice(first, m) if tc_cfg is None else None
        if tc_cfg is not None or word_cfg is not None:
            kernel, cfg = (tc.tc_qmm, tc_cfg) if tc_cfg is not None else (gw.gemv_words, word_cfg)
            out["dispatched_kernel"] = kernel.__name__
            out["dispatched_ms"] = per_call_ms(lambda x, pw: kernel(x, pw, cfg))
            out["dispatched_rel_err"] = rel(kernel(xs[0], pws[0], cfg))
    if rows:
        b = rows[0]["cfg"]
        out["tc_ms"], out["tc_cfg"] = rows[0]["ms"], b
        out["tc_rel_err"] = rel(tc.tc_qmm(xs[0], pws[0], tc.TcConfig(*b)))
    for key in (
        "cublas_ms",
        "qmm_ms",
        "tc_ms",
        "tc_noasm_ms",
        "gemv_ms",
        "a8_ms",
        "gemv_lean_ms",
        "gemv_old_ms",
        "half2_ms",
        "dispatched_ms",
    ):
        if key in out and out[key] < math.inf:
            out[key.replace("_ms", "_GBps")] = wbytes / (out[key] * 1e-3) / 1e9
    return out


def half2_wave_candidates(pw: qk.PackedWeight) -> list[gh.Half2Config]:
    """f16x2 GEMV shapes of 128 or 256 rows, 4 or 8 warps, with every split-K from 1 to 16 that gives a
    grid of its own (splits are rounded to whole steps): where one wave of programs ends matters
    more than the split (a 4-warp program of 256 rows keeps 168 registers a thread, 3 an SM; of 128
    rows 95, 5 an SM; Triton 3.6, sm_90)."""
    kw = pw.k * gh.HALF2_BITS[pw.fmt] // 32
    out, seen = [], set()
    for bn, bw, warps in ((256, 32, 4), (128, 32, 4), (256, 32, 8), (128, 16, 4)):
        for split in range(1, 17):
            key = (bn, bw, warps, whole_splits(kw, split, bw)[1])
            cfg = gh.Half2Config(bn, bw, warps, split)
            if key not in seen and gh.half2_fits(pw, cfg) and kw // split >= bw:
                seen.add(key)
                out.append(cfg)
    return out


def compact_tc_candidates(pw: qk.PackedWeight) -> list[tc.TcConfig]:
    """A smaller grid than `tc_candidates`: the streaming depth (tile x groups x stages) and split-K for narrow N."""
    out = []
    for bn in (32, 64, 128):
        for stages in (3, 4):
            if pw.scale_mode in (0, 1):
                out += [tc.TcConfig(bn, bk, 4, stages) for bk in (256, 512) if pw.k % bk == 0]
            else:
                out += [tc.TcConfig(bn, pw.group_size, 4, stages, g) for g in (1, 2, 4)]
    if pw.n <= 4096:
        out += [dataclasses.replace(c, split_k=sk) for c in out if c.block_n == 64 for sk in (2, 4)]
    return out


def split_tc_candidates(pw: qk.PackedWeight, m: int) -> list[tc.TcConfig]:
    """Tile rows, warps and split-K (1-8) around the dispatched tensor-core shape, its K step and stages kept."""
    from trico.kernels.dispatch import tensor_core_choice

    chosen = tensor_core_choice(pw, m)
    if chosen is None:
        return []
    return [
        dataclasses.replace(chosen, block_n=bn, num_warps=w, split_k=sk)
        for bn in (32, 64, 128)
        for w in (4, 8)
        for sk in (1, 2, 4, 8)
        if pw.n % bn == 0
    ]


def step_tc_candidates(pw: qk.PackedWeight, m: int) -> list[tc.TcConfig]:
    """Tile rows 64-256, warps, split-K 1-4 (8 on narrow layers) and the bytes a step (one or two scale
    groups, or 256/512 codes with one scale a row): after the word-order unpacking, whose instructions
    per weight fall with taller tiles (fewer x operands per weight) and longer steps."""
    from trico.kernels.dispatch import tensor_core_choice

    chosen = tensor_core_choice(pw, m)
    if chosen is None:
        return []
    per_row = pw.scale_mode in (0, 1)
    steps = (
        [(bk, 1) for bk in (256, 512) if pw.k % bk == 0] if per_row else [(pw.group_size, g) for g in (1, 2)]
    )
    splits = (1, 2, 4, 8) if pw.n <= 4096 else (1, 2, 4)
    return [
        dataclasses.replace(chosen, block_n=bn, block_k=bk, groups_per_step=g, num_warps=w, split_k=sk)
        for bn in (64, 128, 256)
        for w in (4, 8)
        for sk in splits
        for bk, g in steps
        if pw.n % bn == 0 and pw.k % (bk * g) == 0 and _stages_fit(pw, chosen.num_stages, bn, bk * g)
    ]


def _stages_fit(pw: qk.PackedWeight, stages: int, block_n: int, step: int) -> bool:
    """Whether the packed tile and a 16-row x tile of every stage fit the H200's 227 KiB of shared memory
    (else tc_qmm would shrink the shape and the timing would carry the wrong label)."""
    bits = tc.TC_BITS[pw.fmt]
    return stages * (block_n * step * bits // 8 + 16 * step * 2) <= 220 * 1024


def dense_tc_candidates(pw: qk.PackedWeight, m: int) -> list[tc.TcConfig]:
    """bf16/fp16 weights: tile rows, warps (2: mma.sync, 4: a warpgroup) and pipeline depth around the
    dispatched shape, and split-K for narrow N."""
    out = [tc.TcConfig(bn, 256, w, st) for bn in (16, 32, 64) for w in (2, 4) for st in (4, 5, 6)]
    out += [tc.TcConfig(32, 512, 2, 3), tc.TcConfig(32, 128, 2, 8), tc.TcConfig(16, 512, 2, 4)]
    if pw.n <= 4096:
        out += [dataclasses.replace(c, split_k=2) for c in out if c.block_n in (16, 32) and c.num_stages == 5]
    return out


def copy_gbps() -> float:
    """Same-run device-to-device copy bandwidth (bytes read + written)."""
    a = torch.empty(2**30 // 2, dtype=torch.bfloat16, device="cuda")
    b = torch.empty_like(a)
    ms = graph_ms([lambda: b.copy_(a)] * 4) / 4
    return 2 * a.numel() * 2 / (ms * 1e-3) / 1e9


def main() -> int:
    """Run the grid, write JSON, print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--rows", default="1,16")
    p.add_argument("--shapes", default=",".join(f"{n}x{k}" for n, k in SHAPES), help="NxK,NxK,...")
    p.add_argument("--formats", default=",".join(f[0] for f in FORMATS))
    p.add_argument(
        "--families",
        default="qmm,tc,gemv,a8",
        help="kernel families to sweep: qmm, tc (or tc-compact: a smaller grid, plus the best shape "
        "without the PTX unpacking), gemv (or gemv-chosen: the dispatched shape only), "
        "a8 (or a8-chosen: the dispatched shape with and without prefetch), gemv-lean-ab (the "
        "dispatched word-GEMV shape with gemv.LEAN_LOOP on and off), half2 (the f16x2 GEMV's "
        "candidates; half2-wave: every split-K of 128/256-row tiles, all kept), dispatched (the "
        "tensor-core or word-GEMV kernel and shape dispatch picks with the f16x2 GEMV off: what it "
        "replaced), tc-dense (bf16: tile rows, warps, stages and split-K around the dispatched "
        "tensor-core shape, which is timed too), tc-split (any format: tile rows, warps and "
        "split-K 1-8 around the dispatched tensor-core shape, also timed), tc-steps (tile rows "
        "64-256, warps, split-K and bytes a step, and the dispatched shape)",
    )
    p.add_argument("--out", default="benchmarks/results/gemv-variants.json")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("gemv_variants: no CUDA GPU here; nothing to time", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    results = {"gpu": torch.cuda.get_device_name(), "copy_GBps": copy_gbps(), "cases": []}
    wanted = set(args.formats.split(","))
    for label, fmt, group, sym in FORMATS:
        if label not in wanted:
            continue
        for n, k in [tuple(int(v) for v in nk.split("x")) for nk in args.shapes.split(",")]:
            for m in [int(v) for v in args.rows.split(",")]:
                r = run_case(label, fmt, group, sym, n, k, m, args.quick, set(args.families.split(",")))
                results["cases"].append(r)
                Path(args.out).write_text(json.dumps(results, indent=1))
                print(
                    f"{label:15s} {n:6d}x{k:<6d} m={m:<3d} qmm {r.get('qmm_GBps', 0):7.0f} GB/s"
                    f"  tc {r.get('tc_GBps', 0):7.0f} GB/s {r.get('tc_cfg')} (no PTX {r.get('tc_noasm_GBps', 0):5.0f})"
                    f"  gemv {r.get('gemv_GBps', 0):7.0f} GB/s {r.get('gemv_cfg')}"
                    f"  a8 {r.get('a8_GBps', 0):7.0f} GB/s {r.get('a8_cfg')} err {r.get('a8_rel_err', 0):.1e}"
                    f"  cublas {r.get('cublas_GBps', 0):7.0f}  err {r.get('tc_rel_err', 0):.1e}"
                    f"  lean/old {r.get('gemv_lean_GBps', 0):5.0f}/{r.get('gemv_old_GBps', 0):5.0f}"
                    f"  half2 {r.get('half2_GBps', 0):5.0f} {r.get('half2_cfg')} err {r.get('half2_rel_err', 0):.1e}"
                    f"  dispatched {r.get('dispatched_GBps', 0):5.0f} ({r.get('dispatched_kernel')})",
                    flush=True,
                )
    print(f"copy bandwidth {results['copy_GBps']:.0f} GB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
