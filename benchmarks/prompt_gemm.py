"""Prompt-sized products of packed weights on the GPU: dequantize + cuBLAS against the tensor-core kernel
tiled over the prompt's rows (`qgemm_tc.tc_qmm` with `block_m`), per format, layer shape and row count.

A prompt of more than 64 rows used to take one path only: every weight dequantized to bf16 (written and
read back: ~4x the packed bytes for 4-bit codes), then cuBLAS. The tensor-core kernel reads the packed weight
instead and unpacks it in registers, so it wins while the product is memory-bound and loses once the
unpacking and its slower tensor-core path outweigh the bytes. This sweep finds where, and which launch shape
to take below that (`dispatch.prompt_tc_choice` follows its result file; a test checks the rule against it).

Each variant is timed as a CUDA graph over enough weight copies to overflow the L2 cache (median of
replays); bf16 cuBLAS on a dense weight of the same shape is the reference point.
Usage: python benchmarks/prompt_gemm.py [--rows 96,128,256] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from benchmarks.gemv_variants import FORMATS, SHAPES, copy_gbps, graph_ms, weights_beyond_l2  # noqa: E402
from benchmarks.kernels import make_weight  # noqa: E402
from trico.kernels import qgemm_tc as tc  # noqa: E402
from trico.kernels import qlinear as qk  # noqa: E402

PROMPT_FORMATS = ["int8", "int4-g128", "int4-g128-asym", "tern2"]
"""Formats whose codes the tensor-core kernel unpacks with PTX (3-bit and tern1.6 codes take Triton ops there)."""


def prompt_candidates(pw: qk.PackedWeight) -> list[tc.TcConfig]:
    """Launch shapes worth timing: row tiles of x 64 or 128, weight tiles 64 or 128 rows, 4 or 8 warps, 3-4 stages."""
    step = 128 if pw.scale_mode in (0, 1) else pw.group_size
    return [
        tc.TcConfig(bn, step, warps, stages, block_m=bm)
        for bm in (64, 128)
        for bn in (64, 128)
        for warps in (4, 8)
        for stages in (3, 4)
    ]


def run_case(label: str, fmt: str, group: int, sym: bool, n: int, k: int, rows: list[int]) -> list[dict]:
    """Time cuBLAS on bf16, dequantize + cuBLAS and every tensor-core candidate at each row count."""
    pws = weights_beyond_l2(fmt, group, sym, n, k)
    dense = [make_weight("bf16", 0, True, n, k) for _ in range(2)]
    copies = len(pws)
    out = []
    for m in rows:
        xs = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        ref = xs[0].float() @ qk.dequantize(pws[0], torch.float32).t()

        def per_call_ms(fn, weights=pws, xs=xs) -> float:  # noqa: ANN001
            count = len(weights)
            return graph_ms([lambda i=i: fn(xs[i % copies], weights[i]) for i in range(count)]) / count

        case = {"label": label, "fmt": fmt, "n": n, "k": k, "m": m, "copies": copies}
        case["bf16_cublas_ms"] = per_call_ms(lambda x, pw: F.linear(x, pw.units), dense)
        case["dequant_ms"] = per_call_ms(lambda x, pw: F.linear(x, qk.dequantize(pw, x.dtype)))
        timed = []
        for cfg in prompt_candidates(pws[0]):
            try:
                ms = per_call_ms(lambda x, pw, c=cfg: tc.tc_qmm(x, pw, c))
            except Exception as exc:  # noqa: BLE001 - a shape the compiler refuses is skipped, and said
                print(f"  tc {cfg} failed: {type(exc).__name__}: {str(exc)[:120]}", flush=True)
                continue
            timed.append({"cfg": dataclasses.asdict(cfg), "ms": ms})
        timed.sort(key=lambda r: r["ms"])
        case["tc_all"] = timed
        if timed:
            best = tc.TcConfig(**timed[0]["cfg"])
            case["tc_ms"], case["tc_cfg"] = timed[0]["ms"], timed[0]["cfg"]
            y = tc.tc_qmm(xs[0], pws[0], best).float()
            case["tc_rel_err"] = float((y - ref).norm() / ref.norm())
        flops = 2 * m * n * k
        for key in ("bf16_cublas_ms", "dequant_ms", "tc_ms"):
            if key in case and case[key] < math.inf:
                case[key.replace("_ms", "_TFLOPs")] = flops / (case[key] * 1e-3) / 1e12
        out.append(case)
        print(
            f"{label:15s} {n:6d}x{k:<6d} m={m:<5d} bf16 {case['bf16_cublas_ms'] * 1e3:8.1f} us"
            f"  dequant+cuBLAS {case['dequant_ms'] * 1e3:8.1f} us  tc {case.get('tc_ms', math.inf) * 1e3:8.1f} us"
            f" {case.get('tc_cfg')} err {case.get('tc_rel_err', 0):.1e}",
            flush=True,
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the grid, write JSON as it goes."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", default="96,128,192,256,384,512,1024", help="prompt rows, comma-separated")
    p.add_argument("--shapes", default=",".join(f"{n}x{k}" for n, k in SHAPES[:4]), help="NxK,NxK,...")
    p.add_argument("--formats", default=",".join(PROMPT_FORMATS))
    p.add_argument("--out", default="benchmarks/results/prompt-gemm.json")
    args = p.parse_args(argv)
    wanted = args.formats.split(",")
    unknown = set(wanted) - {f[0] for f in FORMATS}
    if unknown:
        p.error(f"unknown formats {sorted(unknown)}")
    try:
        rows = [int(v) for v in args.rows.split(",")]
        shapes = [tuple(int(v) for v in nk.split("x")) for nk in args.shapes.split(",")]
    except ValueError:
        p.error(
            f"--rows takes counts like 128,256 and --shapes NxK pairs like 4096x4096, not {args.rows!r} / {args.shapes!r}"
        )
    if not torch.cuda.is_available():
        print("prompt_gemm: no CUDA GPU here; nothing to time", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    results = {"gpu": torch.cuda.get_device_name(), "copy_GBps": copy_gbps(), "cases": []}
    for label, fmt, group, sym in FORMATS:
        if label not in wanted:
            continue
        for n, k in shapes:
            results["cases"] += run_case(label, fmt, group, sym, n, k, rows)
            Path(args.out).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
