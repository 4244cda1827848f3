"""Whether the one-row f16x2 GEMV streams faster from a tile-major copy of its words than from row-major words.

Row-major words put each loop step's [block_n, block_w] tile in block_n separate pieces of
block_w * 4 bytes, one weight row apart (2 KB for a 4096-wide int4 row); `gemv_half2.tile_major`
reorders the words so that each step reads one contiguous block. This times both layouts per Llama
layer shape and format at the dispatched launch shape, with and without the kernel's prefetch knobs
(`Half2Config.l2_ahead`, `x_l1`), eight warps, or twice the split (`VARIANTS`), as CUDA graphs
over enough weight copies to overflow L2 (like `gemv_variants.py`); the fused gate/up shapes also
with the SiLU-gate epilogue, as the engine runs them.
Usage: python benchmarks/half2_layout.py [--formats int4-g128,tern2] [--shapes 12288x4096,...] [--variants A,B]
[--out FILE.json]
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

from benchmarks.gemv_variants import FORMATS, copy_gbps, graph_ms, weights_beyond_l2  # noqa: E402
from benchmarks.kernels import nbytes  # noqa: E402
from trico.kernels import gemv_half2 as gh  # noqa: E402
from trico.kernels.dispatch import half2_choice  # noqa: E402

SHAPES = [(12288, 4096), (4096, 4096), (22016, 4096), (4096, 11008), (28672, 4096), (4096, 14336)]
GATE_SHAPES = {(22016, 4096), (28672, 4096)}
"""Fused gate/up projections: timed with the SiLU-gate epilogue too."""


VARIANTS = [  # (label, tile-major words, Half2Config changes to the dispatched shape, gemv_half2.CONST_STRIDE)
    ("row-major", False, {}, False),
    ("row-major const-stride", False, {}, True),
    ("row-major const-stride split x2", False, {"split_k": 2}, True),
    ("row-major const-stride x-l1", False, {"x_l1": True}, True),
    ("row-major l2+1", False, {"l2_ahead": 1}, False),
    ("row-major l2+2", False, {"l2_ahead": 2}, False),
    ("row-major l2+3", False, {"l2_ahead": 3}, False),
    ("row-major x-l1", False, {"x_l1": True}, False),
    ("row-major l2+2 x-l1", False, {"l2_ahead": 2, "x_l1": True}, False),
    ("row-major 8 warps", False, {"num_warps": 8}, False),
    ("tile-major", True, {}, False),
    ("tile-major l2+2", True, {"l2_ahead": 2}, False),
    ("tile-major l2+2 x-l1", True, {"l2_ahead": 2, "x_l1": True}, False),
    ("tile-major 8 warps", True, {"num_warps": 8}, False),
    ("tile-major split x2", True, {"split_k": 2}, False),
    ("row-major one wave", False, {"programs": 3 * 132}, False),
    ("row-major const-stride one wave", False, {"programs": 4 * 132}, True),
    ("tile-major one wave", True, {"programs": 4 * 132}, False),
]
"""What is timed against the dispatched launch (split_k here multiplies the dispatched split; programs caps
the grid: the largest split whose grid fits, e.g. the programs an H200 holds at once with 3 or 4 per SM)."""


def split_within(tiles: int, kw: int, block_w: int, programs: int) -> int:
    """The largest split-K whose grid (after the launcher rounds splits to whole steps) is at most `programs`."""
    best = 1
    for split in range(1, kw // block_w + 1):
        per_split = math.ceil(math.ceil(kw / split) / block_w) * block_w
        if tiles * math.ceil(kw / per_split) <= programs:
            best = split
    return best


def time_case(label: str, n: int, k: int, variants: list[tuple]) -> list[dict]:
    """Rows of (variant, gate, us, GB/s) for one weight shape at the dispatched launch shape and its variants."""
    _, fmt, group, sym = next(f for f in FORMATS if f[0] == label)
    pws = weights_beyond_l2(fmt, group, sym, n, k)
    copies, wbytes = len(pws), nbytes(pws[0])
    xs = [torch.randn(1, k, device="cuda", dtype=torch.bfloat16) for _ in range(copies)]
    chosen = half2_choice(pws[0], 1, torch.bfloat16)
    rows = []
    for gate in (False, True) if (n, k) in GATE_SHAPES else (False,):
        want = gh.gemv_half2(xs[0], pws[0], chosen, gate=gate).float()
        for name, tiled, change, const_stride in variants:
            gh.CONST_STRIDE = const_stride
            change = dict(change)
            if "split_k" in change:
                change["split_k"] *= chosen.split_k
            if "programs" in change:
                kw = k * gh.HALF2_BITS[fmt] // 32
                change["split_k"] = split_within(
                    n // chosen.block_n, kw, chosen.block_w, change.pop("programs")
                )
            cfg = dataclasses.replace(chosen, **change)
            if not gh.half2_fits(pws[0], cfg) or (gate and not gh.gate_rows_ok(n, cfg.block_n)):
                continue
            words = [gh.tile_major(pw, cfg, gate) if tiled else None for pw in pws]
            got = gh.gemv_half2(xs[0], pws[0], cfg, gate=gate, tiled=words[0]).float()
            calls = [
                lambda i=i, c=cfg, g=gate, t=words[i]: gh.gemv_half2(xs[i], pws[i], c, gate=g, tiled=t)
                for i in range(copies)
            ]
            us = graph_ms(calls) / copies * 1e3
            rows.append({
                "format": label, "n": n, "k": k, "variant": name, "cfg": list(dataclasses.astuple(cfg)),
                "gate": gate, "us": us, "GBps": wbytes / (us * 1e-6) / 1e9,
                "rel_diff": float((got - want).norm() / want.norm()),
            })  # fmt: skip
            print(f"{label:10s} {n}x{k} gate={gate!s:5s} {name:22s} {us:7.2f} us {rows[-1]['GBps']:6.0f} GB/s",
                  flush=True)  # fmt: skip
            del words
    return rows


def main(argv: list[str] | None = None) -> int:
    """Time every format and shape in both layouts; write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--formats", default="int4-g128,tern2")
    p.add_argument("--shapes", default=",".join(f"{n}x{k}" for n, k in SHAPES), help="NxK,NxK,...")
    p.add_argument("--variants", default="", help="comma-separated labels of VARIANTS (default: all)")
    p.add_argument("--out", default="benchmarks/results/experiments/half2-layout-h200.json")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("half2_layout: no CUDA GPU here; nothing to time", file=sys.stderr)
        return 2
    wanted = set(args.variants.split(",")) if args.variants else None
    variants = [v for v in VARIANTS if wanted is None or v[0] in wanted]
    rows = []
    for label in args.formats.split(","):
        for shape in args.shapes.split(","):
            n, k = (int(v) for v in shape.split("x"))
            rows += time_case(label, n, k, variants)
    out = {"gpu": torch.cuda.get_device_name(), "copy_GBps": copy_gbps(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
