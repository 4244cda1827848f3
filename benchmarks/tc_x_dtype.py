"""What the int8 tensor-core GEMM pays for converting x: the dispatched launch with bf16 x against fp16 x.

8-bit codes need fp16's mantissa, so `qgemm_tc` converts a bf16 x tile to fp16 in the dot-operand
layout, where every warp splitting N holds (and converts) the whole tile: under Triton 3.6 the int8
loop spends ~1 of its 4.5 instructions a weight on it (`sass_mix.py --kernel tc --x-dtype bf16|fp16`).
An fp16 x skips it. Measured on the H200: 1-4% (`results/experiments/tc-x-dtype-h200.json`). This times both on the GPU per Llama layer shape, as CUDA graphs beyond L2 (like
`gemv_variants.py`), with a few launch shapes around the dispatched one.
Usage: python benchmarks/tc_x_dtype.py [--rows 16] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.gemv_variants import copy_gbps, graph_ms, weights_beyond_l2  # noqa: E402
from benchmarks.kernels import nbytes  # noqa: E402
from trico.kernels import qgemm_tc as tc  # noqa: E402
from trico.kernels.dispatch import tensor_core_choice  # noqa: E402

SHAPES = [(12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008)]


def variants(chosen: tc.TcConfig) -> list[tc.TcConfig]:
    """The dispatched shape and its neighbours: other warp counts and split-K factors."""
    out = [chosen]
    for warps in (2, 8):
        out.append(dataclasses.replace(chosen, num_warps=warps))
    for split in (chosen.split_k * 2, max(1, chosen.split_k // 2)):
        if split != chosen.split_k:
            out.append(dataclasses.replace(chosen, split_k=split))
    return out


def main(argv: list[str] | None = None) -> int:
    """Time each shape's variants with both x dtypes; write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--out", default="benchmarks/results/experiments/tc-x-dtype-h200.json")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("tc_x_dtype: no CUDA GPU here; nothing to time", file=sys.stderr)
        return 2
    rows = []
    for n, k in SHAPES:
        pws = weights_beyond_l2("int8", -1, True, n, k)
        first, copies = pws[0], len(pws)
        xb = [torch.randn(args.rows, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
        xh = [x.to(torch.float16) for x in xb]
        chosen = tensor_core_choice(first, args.rows)
        for cfg in variants(chosen):
            row = {
                "n": n,
                "k": k,
                "m": args.rows,
                "cfg": list(dataclasses.astuple(cfg)),
                "chosen": cfg == chosen,
            }
            for name, xs in (("bf16", xb), ("fp16", xh)):
                try:
                    ms = (
                        graph_ms(
                            [
                                lambda i=i, xs=xs, pws=pws, c=cfg: tc.tc_qmm(xs[i], pws[i], c)
                                for i in range(copies)
                            ]
                        )
                        / copies
                    )
                except Exception as exc:  # noqa: BLE001 - a shape the compiler refuses is skipped, and said
                    print(f"  {n}x{k} {cfg} {name}: {type(exc).__name__}", flush=True)
                    continue
                row[f"x_{name}_us"] = ms * 1e3
                row[f"x_{name}_GBps"] = nbytes(first) / (ms * 1e-3) / 1e9
            same = tc.tc_qmm(xb[0], pws[0], cfg).float()
            row["max_abs_diff"] = float((same - tc.tc_qmm(xh[0], pws[0], cfg).float()).abs().max())
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"gpu": torch.cuda.get_device_name(), "copy_GBps": copy_gbps(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
