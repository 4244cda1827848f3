"""W8A8 at prefill sizes: the int8 tensor-core GEMM (`trico.kernels.w8a8`) against bf16 cuBLAS and cuBLAS int8.

Decode is memory-bound, so int8 activations buy nothing there over int8 weights; a long prompt is
compute-bound, and int8 MMAs run at twice the bf16 rate on Hopper. Per Llama layer shape and prompt
length this times (CUDA graph of one call, median of replays): the bf16 matmul the float model runs
(cuBLAS), `torch._int_mm` (cuBLAS int8, int32 out, no scaling: an upper bound for the GEMM alone),
the per-token quantization kernel alone, and `w8a8_linear` (quantization + GEMM + scaling) at the
dispatched launch shape and its neighbours. Each launch shape's output is checked against the exact
integer product scaled in the reference's order (bit-identical expected).
Usage: python benchmarks/w8a8_prefill.py [--rows 2048] [--model llama-2-7b] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.gemv_variants import graph_ms  # noqa: E402
from trico.config import get_config  # noqa: E402
from trico.kernels.w8a8 import W8A8Config, quantize_rows, w8a8_choice, w8a8_linear  # noqa: E402
from trico.quant.qlinear import QLinear  # noqa: E402


def layer_shapes(model: str) -> list[tuple[int, int]]:
    """(N, K) of a decoder layer's fused projections: QKV, o, gate/up, down."""
    c = get_config(model)
    return [
        (c.q_dim + 2 * c.kv_dim, c.dim),
        (c.dim, c.q_dim),
        (2 * c.hidden_dim, c.dim),
        (c.dim, c.hidden_dim),
    ]


def candidates(m: int, n: int, k: int) -> list[W8A8Config]:
    """The dispatched shape first, then large-tile neighbours."""
    base = w8a8_choice(m, n, k)
    more = [
        W8A8Config(128, 128, 128, 8, 3),
        W8A8Config(128, 128, 64, 4, 4),
        W8A8Config(128, 256, 128, 8, 3),
        W8A8Config(256, 128, 128, 8, 3),
        W8A8Config(128, 128, 128, 4, 4),
        W8A8Config(64, 128, 128, 4, 4),
    ]
    return [base] + [c for c in more if c != base]


def run_case(m: int, n: int, k: int) -> dict:
    """Timings and exactness of one (rows, N, K) case."""
    gen = torch.Generator().manual_seed(n + k)
    codes = torch.randint(-127, 128, (n, k), generator=gen, dtype=torch.int8)
    scales = (torch.rand(n, 1, generator=gen) * 0.01 + 0.001).half()
    smooth = (torch.rand(k, generator=gen) * 1.5 + 0.25).half()
    q = QLinear.from_codes(codes, scales, "w8a8", k, smooth=smooth).cuda()
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    w16 = torch.randn(n, k, device="cuda", dtype=torch.bfloat16)
    xq, sx = quantize_rows(x, q.smooth)
    wt = q.qweight.t()
    want = ((torch._int_mm(xq, wt).float() * sx[:, None]) * q.scales.float().view(1, n)).to(torch.bfloat16)
    flops = 2 * m * n * k
    row = {
        "rows": m,
        "n": n,
        "k": k,
        "bf16_cublas_ms": graph_ms([lambda: F.linear(x, w16)]),
        "int8_cublas_ms": graph_ms([lambda: torch._int_mm(xq, wt)]),
        "quantize_ms": graph_ms([lambda: quantize_rows(x, q.smooth)]),
        "w8a8": [],
    }
    for cfg in candidates(m, n, k):
        try:
            got = w8a8_linear(x, q, config=cfg)
            ms = graph_ms([lambda cfg=cfg: w8a8_linear(x, q, config=cfg)])
        except Exception as exc:  # a shape the compiler refuses (shared memory): recorded, not fatal
            row["w8a8"].append(
                {"cfg": dataclasses.astuple(cfg), "error": f"{type(exc).__name__}: {exc}"[:200]}
            )
            continue
        row["w8a8"].append({
            "cfg": dataclasses.astuple(cfg),
            "ms": ms,
            "TFLOPs": flops / ms / 1e9,
            "exact": bool(torch.equal(got, want)),
            "max_abs_diff": float((got.float() - want.float()).abs().max()),
        })  # fmt: skip
    row["bf16_TFLOPs"] = flops / row["bf16_cublas_ms"] / 1e9
    row["int8_cublas_TOPs"] = flops / row["int8_cublas_ms"] / 1e9
    ok = [r for r in row["w8a8"] if "ms" in r]
    best = min(ok, key=lambda r: r["ms"]) if ok else None
    row["dispatched_ms"] = ok[0]["ms"] if ok and ok[0]["cfg"] == row["w8a8"][0]["cfg"] else None
    row["best_cfg"] = best["cfg"] if best else None
    row["speedup_vs_bf16"] = row["bf16_cublas_ms"] / row["dispatched_ms"] if row["dispatched_ms"] else None
    return row


def quant_shapes(k: int) -> list[tuple[int, int] | None]:
    """Row-quantization launch shapes to time: the dispatched one (None), whole rows with other warp
    counts, and two-pass blocks."""
    whole = 1 << (k - 1).bit_length()
    return (
        [None] + [(whole, w) for w in (4, 8, 16, 32)] + [(b, w) for b in (1024, 2048, 4096) for w in (4, 8)]
    )


def run_quant(m: int, k: int) -> dict:
    """Timings of the row quantization's launch shapes for x [m, k], and whether each matches the dispatched one."""
    x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
    smooth = (torch.rand(k, device="cuda") * 1.5 + 0.25).half()
    want = quantize_rows(x, smooth)
    out = {"rows": m, "k": k, "shapes": []}
    for shape in quant_shapes(k):
        got = quantize_rows(x, smooth, shape)
        same = torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
        ms = graph_ms([lambda shape=shape: quantize_rows(x, smooth, shape)])
        out["shapes"].append({"shape": shape, "us": ms * 1e3, "same": same})
    return out


def main() -> int:
    """Run every layer shape at each row count; print a table, optionally write JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="2048", help="comma-separated prompt lengths (rows of x)")
    p.add_argument("--model", default="llama-2-7b", help="model preset whose layer shapes to time")
    p.add_argument("--out", default=None, help="write the results JSON here")
    p.add_argument(
        "--quant-rows", default="", help="also time the row quantization's launch shapes at these rows"
    )
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("w8a8_prefill: no CUDA GPU here; nothing to time", file=sys.stderr)
        return 2
    quant = []
    for m in (int(v) for v in args.quant_rows.split(",") if v):
        for k in sorted({k for _, k in layer_shapes(args.model)}):
            quant.append(run_quant(m, k))
            print(
                f"quantize M={m} K={k}:",
                "  ".join(
                    f"{s['shape']} {s['us']:.1f}{'' if s['same'] else ' DIFF'}" for s in quant[-1]["shapes"]
                ),
                flush=True,
            )
    rows = []
    for m in (int(v) for v in args.rows.split(",") if v):
        for n, k in layer_shapes(args.model):
            r = run_case(m, n, k)
            rows.append(r)
            d = r["dispatched_ms"]
            print(
                f"M={m:5d} {n:6d}x{k:<6d} bf16 {r['bf16_cublas_ms'] * 1e3:7.1f} us  int8 cuBLAS "
                f"{r['int8_cublas_ms'] * 1e3:7.1f}  quant {r['quantize_ms'] * 1e3:6.1f}  w8a8 "
                f"{d * 1e3 if d else float('nan'):7.1f} ({r['speedup_vs_bf16'] or float('nan'):.2f}x bf16)  "
                f"best {r['best_cfg']}  exact {all(c.get('exact') for c in r['w8a8'] if 'ms' in c)}",
                flush=True,
            )
            for c in r["w8a8"]:
                print("    ", c)
    if args.out:
        meta = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "model": args.model}
        Path(args.out).write_text(json.dumps({**meta, "quantize": quant, "cases": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
