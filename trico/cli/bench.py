"""`trico bench`: decode/prefill speed of trico vs HF transformers on this machine (BENCH.md protocol)."""

from __future__ import annotations

import argparse

from trico.errors import TricoError

CPU_MAX_PARAMS = 1e9
"""Largest model `trico bench` builds on the CPU (random fp32 weights must fit in host memory)."""


def _ints(s: str) -> list[int]:
    try:
        return [int(v) for v in s.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `trico bench`."""
    p = subparsers.add_parser(
        "bench",
        help="measure decode tokens/s, MBU and prefill TFLOP/s (random weights, GPU)",
        description="Decode and prefill benchmark per BENCH.md: same-run copy/matmul ceilings, the HF "
        "transformers static-cache compiled baseline, and trico. Writes one JSON object per configuration.",
    )
    p.add_argument("--models", default="llama-2-7b", help="comma-separated presets (or 'tiny')")
    p.add_argument("--formats", default="bf16,int8,int4-g128,tern2", help="comma-separated weight formats")
    p.add_argument("--batches", default="1", type=_ints)
    p.add_argument("--prompt", default=128, type=int)
    p.add_argument("--new-tokens", default=256, type=int)
    p.add_argument("--contexts", default="", type=_ints)
    p.add_argument("--prefill", default=2048, type=int, help="prefill length (0: skip)")
    p.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--mode", default="graph", choices=["graph", "compile", "eager"])
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="benchmarks/results/decode.json")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from trico.engine.benchmark import run, table
    from trico.engine.device import resolve_device

    device = resolve_device(args.device)
    if args.prompt < 1 or args.new_tokens < 1:
        raise TricoError("--prompt and --new-tokens must be >= 1")
    models = [m for m in args.models.split(",") if m]
    if device.type == "cpu":
        from trico.config import get_config

        # Random-weight benchmark shapes are GPU work: a 7B model in fp32 does not fit this kind of host.
        too_big = [m for m in models if m != "tiny" and get_config(m).n_params() > CPU_MAX_PARAMS]
        if too_big:
            raise TricoError(
                f"{', '.join(too_big)} is a GPU benchmark; on the CPU `trico bench` runs models up to "
                f"{CPU_MAX_PARAMS / 1e9:.0f}B parameters (e.g. --models tiny or smollm2-135m)"
            )
    results = run(
        models=models,
        formats=[f for f in args.formats.split(",") if f],
        batches=args.batches,
        prompt=args.prompt,
        new_tokens=args.new_tokens,
        contexts=args.contexts,
        prefill=args.prefill,
        baseline=args.baseline,
        device=device,
        mode=args.mode,
        log=lambda s: print(s, flush=True),
        out=args.out,
    )
    print(f"\nwrote {len(results)} results to {args.out}\n")
    print(table(results))
    return 0
