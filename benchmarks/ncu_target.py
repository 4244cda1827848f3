"""Launch one decode kernel a few times on a Llama layer shape, for Nsight Compute to read its counters.

Example (on the GPU machine):
    ncu --clock-control none --kernel-name regex:_gemv_kernel --launch-skip 2 --launch-count 1 \
        --section SpeedOfLight --section WarpStateStats python benchmarks/ncu_target.py --fmt int8
The kernel is the one dispatch picks (the f16x2 GEMV `_half2_kernel` for 4- and 2-bit codes at one or
two rows).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.gemv_variants import FORMATS  # noqa: E402
from benchmarks.kernels import make_weight  # noqa: E402
from trico.kernels import dispatch  # noqa: E402
from trico.kernels import gemv_half2 as gh  # noqa: E402
from trico.kernels.gemv import gemv_words  # noqa: E402
from trico.kernels.qgemm_tc import tc_qmm  # noqa: E402


def main() -> int:
    """Run the dispatched kernel of one format, shape and row count `--launches` times."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fmt", default="int4-g128", help="a label of gemv_variants.FORMATS")
    p.add_argument("--shape", default="22016x4096", help="NxK")
    p.add_argument("--rows", default=1, type=int)
    p.add_argument("--launches", default=4, type=int)
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("ncu_target: no CUDA GPU here; nothing to launch", file=sys.stderr)
        return 2
    _, fmt, group, sym = next(f for f in FORMATS if f[0] == args.fmt)
    n, k = (int(v) for v in args.shape.split("x"))
    pw = make_weight(fmt, group, sym, n, k)
    x = torch.randn(args.rows, k, device="cuda", dtype=torch.bfloat16)
    half2 = dispatch.half2_choice(pw, args.rows, x.dtype)
    words = dispatch.word_gemv_choice(pw, args.rows)
    tc = dispatch.tensor_core_choice(pw, args.rows)
    for _ in range(args.launches):
        if half2 is not None:
            y = gh.gemv_half2(x, pw, half2)
        else:
            y = gemv_words(x, pw, words) if words is not None else tc_qmm(x, pw, tc)
    torch.cuda.synchronize()
    kernel = f"f16x2 GEMV {half2}" if half2 else f"word GEMV {words}" if words else f"tensor-core {tc}"
    print(f"{args.fmt} {n}x{k} rows {args.rows}: {kernel}")
    return 0 if y.isfinite().all() else 1


if __name__ == "__main__":
    raise SystemExit(main())
