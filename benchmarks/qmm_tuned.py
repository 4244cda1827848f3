"""qlinear.qmm as `tuned_config` picks it, for int3-g128 and tern1.6 on Llama-2-7B shapes at 1, 4 and 16 rows.

Run it in two checkouts for a same-run A/B of the kernel (weights cycled beyond L2, CUDA-graph timed,
`gemv_variants.graph_ms`). Usage (GPU): python benchmarks/qmm_tuned.py [TREE] --tag NAME --out DIR
(TREE: the checkout whose trico to import, default this one).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Time each case, print one line each, write DIR/qmm-tuned-TAG.json."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("tree", nargs="?", default=str(Path(__file__).resolve().parents[1]))
    p.add_argument("--tag", default="this")
    p.add_argument("--out", default=".")
    args = p.parse_args(argv)
    sys.path.insert(0, args.tree)
    import torch

    if not torch.cuda.is_available():
        print("qmm_tuned: no CUDA GPU here; nothing to time", file=sys.stderr)
        return 2
    from benchmarks.gemv_variants import graph_ms, weights_beyond_l2
    from benchmarks.kernels import nbytes
    from trico.kernels import qlinear as qk

    rows = []
    for label, fmt, group in (("int3-g128", "uint3", 128), ("tern1.6", "tern1.6", 0)):
        for n, k in ((12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008)):
            pws = weights_beyond_l2(fmt, group, True, n, k)
            for m in (1, 4, 16):
                xs = [torch.randn(m, k, device="cuda", dtype=torch.bfloat16) for _ in pws]
                cfg = qk.tuned_config(xs[0], pws[0])
                calls = [lambda x=x, pw=pw, c=cfg: qk.qmm(x, pw, c) for x, pw in zip(xs, pws)]
                ms = graph_ms(calls) / len(pws)
                ref = xs[0].float() @ qk.dequantize(pws[0], torch.float32).t()
                err = float((qk.qmm(xs[0], pws[0], cfg).float() - ref).norm() / ref.norm())
                rows.append(
                    {"label": label, "n": n, "k": k, "m": m, "cfg": str(cfg), "us": ms * 1e3,
                     "GBps": nbytes(pws[0]) / ms / 1e6, "rel_err": err}
                )  # fmt: skip
                print(args.tag, rows[-1], flush=True)
    Path(args.out, f"qmm-tuned-{args.tag}.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
