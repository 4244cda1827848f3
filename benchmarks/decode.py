"""Decode and prefill speed of trico vs HF transformers, per ../shared/BENCH.md.

Example (on the GPU machine):
    python benchmarks/decode.py --models llama-2-7b,llama-3-8b --formats bf16,int8,int4-g128,tern2 \
        --batches 1,4,16,64 --prompt 128 --new-tokens 256 --prefill 2048 --baseline \
        --out benchmarks/results/decode-h100.json
CPU smoke test: python benchmarks/decode.py --device cpu --models tiny --formats bf16,int4-g32 \
        --batches 1 --new-tokens 8 --prompt 16 --prefill 32 --no-baseline --out /tmp/smoke.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from trico.cli.bench import EPILOG, add_grid_arguments, int_list  # noqa: E402
from trico.engine.benchmark import run, table, write_results  # noqa: E402
from trico.engine.device import resolve_device  # noqa: E402
from trico.errors import TricoError  # noqa: E402
from trico.kernels import fused_prologues, programmatic_launch  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command line: `trico bench`'s grid options, with the full grid as defaults, and more."""
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_grid_arguments(p, "llama-2-7b,llama-3-8b", "bf16,int8,int4-g128,int3-g128,tern2,tern1.6", "1,4,16,64")
    p.add_argument(
        "--baseline-batches", default=[1], type=int_list, help="batches the baseline runs (default 1)"
    )
    p.add_argument(
        "--compare-compile", action="store_true", help="also time torch.compile for bf16, first batch"
    )
    p.add_argument("--repeats", default=3, type=int, help="timed runs per configuration (median); default 3")
    p.add_argument(
        "--pdl",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="launch decode kernels with programmatic dependent launch on Hopper+ (recorded per result)",
    )
    p.add_argument(
        "--prologues",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="apply RMSNorm and the SiLU gate inside the decode projections (recorded per result)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the grid, write the JSON, print the table last."""
    args = build_parser().parse_args(argv)
    try:
        device = resolve_device(args.device)
        with programmatic_launch(args.pdl), fused_prologues(args.prologues):
            results = _run(args, device)
    except TricoError as exc:
        print(f"decode: error: {exc}", file=sys.stderr)
        return 2
    path = write_results(results, args.out)
    print(f"\nwrote {len(results)} results to {path}\n")
    print(table(results))
    return 0


def _run(args: argparse.Namespace, device: torch.device) -> list[dict]:
    """The grid of the parsed command line."""
    return run(
        models=[m for m in args.models.split(",") if m],
        formats=[f for f in args.formats.split(",") if f],
        batches=args.batches,
        prompt=args.prompt,
        new_tokens=args.new_tokens,
        contexts=args.contexts,
        prefill=args.prefill,
        baseline=args.baseline,
        device=device,
        mode=args.mode,
        compare_compile=args.compare_compile,
        repeats=args.repeats,
        baseline_batches=args.baseline_batches,
        log=lambda s: print(s, flush=True),
        out=args.out,
    )


if __name__ == "__main__":
    sys.exit(main())
