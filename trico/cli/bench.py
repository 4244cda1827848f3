"""`trico bench`: decode/prefill speed of trico vs HF transformers on this machine (BENCH.md protocol)."""

from __future__ import annotations

import argparse

from trico.errors import TricoError

CPU_MAX_PARAMS = 1e9
"""Largest model `trico bench` builds on the CPU (random fp32 weights must fit in host memory)."""


def int_list(s: str) -> list[int]:
    """argparse type: comma-separated integers."""
    try:
        return [int(v) for v in s.split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None


EPILOG = (
    "formats: bf16, int8 (per row), int4-g128 / int3-g128 / int2-g64 / uint8-g128 (group size after g;\n"
    "  -asym for min offsets), tern2, tern1.6 (ternary), w8a8 (int8 weights and activations); -a8 after a\n"
    "  quantized format runs its one-row decode GEMVs with int8 activations."
)


def add_grid_arguments(p: argparse.ArgumentParser, models: str, formats: str, batches: str) -> None:
    """The benchmark grid's options (shared by `trico bench` and benchmarks/decode.py), with these defaults."""
    p.add_argument(
        "--models", default=models, help="comma-separated presets (or 'tiny'); default %(default)s"
    )
    p.add_argument(
        "--formats", default=formats, help="comma-separated weight formats (below); default %(default)s"
    )
    p.add_argument(
        "--batches", default=int_list(batches), type=int_list, help=f"decode batch sizes; default {batches}"
    )
    p.add_argument(
        "--prompt", default=128, type=int, help="prompt tokens before decoding; default %(default)s"
    )
    p.add_argument(
        "--new-tokens", default=256, type=int, help="decoded tokens timed per run; default %(default)s"
    )
    p.add_argument(
        "--contexts",
        default="",
        type=int_list,
        help="decode at these context lengths instead (default: --prompt)",
    )
    p.add_argument(
        "--prefill",
        default=2048,
        type=int,
        help="prefill prompt length (0: skip); timed as the engine runs a repeated prompt, replayed from a "
        "CUDA graph, with the eager time beside it; default %(default)s",
    )
    p.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time HF transformers' static-cache compiled decode in the same run",
    )
    p.add_argument(
        "--mode", default="graph", choices=["graph", "compile", "eager"], help="decode step: CUDA graph (default; "
        "repeated prompt shapes replay graphs too), torch.compile reduce-overhead, or eager"
    )  # fmt: skip
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cuda or cpu")
    p.add_argument(
        "--out", default="benchmarks/results/decode.json", help="results JSON; default %(default)s"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `trico bench`."""
    p = subparsers.add_parser(
        "bench",
        help="measure decode tokens/s, MBU and prefill TFLOP/s (random weights, GPU)",
        description="Decode and prefill benchmark per BENCH.md: same-run copy/matmul ceilings, the HF "
        "transformers static-cache compiled baseline, and trico. Writes one JSON object per configuration "
        "(to --out as it goes); `python benchmarks/report.py` turns the results folder into docs/benchmarks.md.",
        epilog="examples:\n"
        "  trico bench --models llama-2-7b --formats bf16,int4-g128 --batches 1,16   (GPU)\n"
        "  trico bench --models tiny --formats bf16,int8 --prefill 32 --no-baseline --device cpu   (smoke run)\n"
        + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_grid_arguments(p, "llama-2-7b", "bf16,int8,int4-g128,tern2", "1")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from trico.engine.benchmark import run, table
    from trico.engine.device import resolve_device

    device = resolve_device(args.device)
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
