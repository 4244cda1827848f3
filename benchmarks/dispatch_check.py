"""Correctness of the kernels the dispatch picks, on real layer shapes and row counts (GPU; CPU: interpreter).

The kernel tests use small shapes and fixed launch shapes; the dispatch rules pick other tiles, splits
and kernels for real layers, and that is where the tensor-core kernel's split-K went wrong unnoticed
(docs/gpu-engine-history.md). For every (format, shape, rows) this runs `dispatch.qlinear_forward` (the path
the engine takes) several times against the QLinear reference and reports the worst relative error;
where the weight's kernel can write the SiLU gate itself (`dispatch.gate_fits`, the weight read as a
fused [gate; up] projection) it checks `dispatch.gated_forward` against silu(gate) * up of the reference.
`--force-split N` also runs the tensor-core kernel with K split N ways (`--stages`, `--warps` override
its launch shape), and
`--fresh-workspace` zeroes the split-K workspaces before every call, which tells a wrong call from a
call spoiled by what an earlier one left behind. (It found the split-K bug's fix:
results/experiments/split-k-epilogue-variants-h200.txt.)

Usage: python benchmarks/dispatch_check.py [--formats ...] [--shapes NxK,...] [--rows 1,8,...] [--out FILE.json]
Exit status 1 when any error is above --tol.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.kernels import make_weight  # noqa: E402
from trico.kernels import dispatch, epilogue, fused_on_cpu  # noqa: E402
from trico.kernels import qgemm_tc as tc  # noqa: E402

FORMATS = {  # label: (fmt, group (-1 per row, 0 per tensor), symmetric)
    "int8": ("int8", -1, True),
    "int4-g128": ("uint4", 128, True),
    "int4-g32-asym": ("uint4", 32, False),
    "int3-g64": ("uint3", 64, True),
    "tern2": ("tern2", 0, True),
}
SHAPES = (
    "960x576,576x576,3072x576,576x1536,"  # SmolLM2-135M: QKV, o, gate/up, down
    "12288x4096,4096x4096,22016x4096,4096x11008"  # Llama-2-7B
)


def kernel_name(pw, rows: int, on_cuda: bool) -> str:  # noqa: ANN001 - a PackedWeight
    """Which kernel `qlinear_forward` runs for this weight and row count (off CUDA: qmm, interpreted)."""
    if rows > dispatch.DECODE_MAX_ROWS:
        return "dequantize+matmul"
    if not on_cuda:
        return "qmm"
    if dispatch.half2_choice(pw, rows, torch.bfloat16) is not None:  # x here is bf16 and aligned
        return "f16x2-gemv"
    if dispatch.tensor_core_choice(pw, rows) is not None:
        return "tensor-core"
    if dispatch.word_gemv_choice(pw, rows) is not None:
        return "word-gemv"
    return "qmm"


def worst_error(fn, ref: torch.Tensor, repeats: int, fresh: bool) -> float:  # noqa: ANN001
    """Largest relative error of fn() against ref over the repeats."""
    worst = 0.0
    for _ in range(repeats):
        if fresh:
            for ws, cnt in epilogue._WORKSPACES.values():
                ws.zero_()
                cnt.zero_()
        got = fn().float()
        worst = max(worst, float((got - ref).norm() / ref.norm().clamp_min(1e-30)))
    return worst


def check_case(label: str, n: int, k: int, rows: int, args: argparse.Namespace) -> dict | None:
    """One (format, shape, rows) case; None when the format cannot take the shape."""
    fmt, group, sym = FORMATS[label]
    if group > 0 and k % group:
        return None
    pw = make_weight(fmt, group, sym, n, k, device=args.device)
    module = pw._owner
    gen = torch.Generator(device=args.device).manual_seed(rows * 7919 + n)
    x = torch.randn(rows, k, device=args.device, generator=gen).to(torch.bfloat16)
    ref16 = module.reference_forward(x)
    ref = ref16.float()
    out = {"format": label, "n": n, "k": k, "rows": rows, "kernel": kernel_name(pw, rows, x.is_cuda)}
    out["max_rel_err"] = worst_error(
        lambda: dispatch.qlinear_forward(module, x), ref, args.repeats, args.fresh_workspace
    )
    # Read as a fused [gate; up] projection: where its kernel writes silu(gate) * up itself, that too.
    with contextlib.nullcontext() if x.is_cuda else fused_on_cpu():
        if dispatch.gate_fits(module, x):
            half = n // 2
            # the model's own MLP expression on the reference projection, in the activation dtype
            gated = (torch.nn.functional.silu(ref16[:, :half]) * ref16[:, half:]).float()
            out["gate_max_rel_err"] = worst_error(
                lambda: dispatch.gated_forward(module, x), gated, args.repeats, args.fresh_workspace
            )
    if args.force_split > 1 and tc.tc_supported(pw) and rows <= dispatch.DECODE_MAX_ROWS:
        cfg = dispatch.tensor_core_choice(pw, max(rows, 2)) or tc.tc_default_config(pw, rows)
        cfg = dataclasses.replace(cfg, split_k=args.force_split)
        if args.stages:
            cfg = dataclasses.replace(cfg, num_stages=args.stages)
        if args.warps:
            cfg = dataclasses.replace(cfg, num_warps=args.warps)
        out["forced_split"] = list(dataclasses.astuple(cfg))
        out["forced_split_max_rel_err"] = worst_error(
            lambda: tc.tc_qmm(x, pw, cfg), ref, args.repeats, args.fresh_workspace
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run every case, print one line each, write the JSON, exit 1 on any error above --tol."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--formats", default=",".join(FORMATS), help=f"from {', '.join(FORMATS)}")
    p.add_argument("--shapes", default=SHAPES, help="NxK,NxK,... (N outputs, K inputs)")
    p.add_argument("--rows", default="1,8,16,40,64", help="rows of x per case")
    p.add_argument("--repeats", type=int, default=3, help="calls per case (a race shows in some)")
    p.add_argument("--force-split", type=int, default=0, help="also run the tensor-core kernel split N ways")
    p.add_argument(
        "--stages", type=int, default=0, help="pipeline stages of the forced split (0: the rule's)"
    )
    p.add_argument("--warps", type=int, default=0, help="warps of the forced split (0: the rule's)")
    p.add_argument("--fresh-workspace", action="store_true", help="zero split-K workspaces before each call")
    p.add_argument("--tol", type=float, default=1e-2, help="largest acceptable relative error")
    p.add_argument(
        "--gate-tol",
        type=float,
        default=2e-2,
        help="the same for silu(gate) * up: a product of two projections, and silu's relative slope "
        "reaches ~2 for negative gates, so the projections' error about doubles",
    )
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", default="", help="JSON file for the rows (none: print only)")
    args = p.parse_args(argv)
    unknown = [f for f in args.formats.split(",") if f not in FORMATS]
    if unknown:
        p.error(f"unknown format(s) {', '.join(unknown)}; known: {', '.join(FORMATS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("no CUDA device: pass --device cpu (with TRITON_INTERPRET=1) to run the interpreter")
    try:
        shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
        rows = [int(r) for r in args.rows.split(",")]
    except ValueError:
        p.error("--shapes is NxK,NxK,... and --rows a comma-separated list of integers")
    results, bad = [], []
    for label in args.formats.split(","):
        for n, k in shapes:
            for m in rows:
                try:
                    r = check_case(label, n, k, m, args)
                except Exception as e:  # a launch that fails is a finding, not the end of the run
                    r = {"format": label, "n": n, "k": k, "rows": m, "error": f"{type(e).__name__}: {e}"}
                    print(f"{label:14s} {n:6d}x{k:<6d} rows {m:3d}  FAILED {r['error'][:160]}")
                    results.append(r)
                    bad.append(r)
                    continue
                if r is None:
                    continue
                results.append(r)
                errs = [r["max_rel_err"], r.get("forced_split_max_rel_err", 0.0)]
                if max(errs) > args.tol or r.get("gate_max_rel_err", 0.0) > args.gate_tol:
                    bad.append(r)
                forced = (
                    f"  forced split {r['forced_split']}: {r['forced_split_max_rel_err']:.1e}"
                    if "forced_split" in r
                    else ""
                )
                gate = f"  gate {r['gate_max_rel_err']:.1e}" if "gate_max_rel_err" in r else ""
                print(
                    f"{label:14s} {n:6d}x{k:<6d} rows {m:3d}  {r['kernel']:12s} {r['max_rel_err']:.1e}{forced}{gate}"
                )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"{len(results)} cases, {len(bad)} above {args.tol:g} (gated: {args.gate_tol:g})")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
