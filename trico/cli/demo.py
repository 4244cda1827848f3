"""`trico demo`: the main job on the default model (what `make demo` runs)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the demo sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="run the main job on the default SmolLM2 model (what `make demo` runs)",
        description="trico optimize on SmolLM2-135M for an H100 SXM (quantize with every candidate "
        "scheme, measure quality on WikiText-2, predict speed and cost, keep the best within the KL "
        "budget), then answer a question with the chosen checkpoint.",
    )
    p.add_argument("--out", default="out/demo", help="output folder (default out/demo; replaced if present)")
    p.add_argument("--target", default="h100-sxm", help="hardware to optimize for (default h100-sxm)")
    p.add_argument("--max-kl", default="0.05", help="quality budget, mean KL per token (default 0.05)")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Optimize, then generate with the chosen checkpoint: each step is an ordinary trico command."""
    from trico.cli import build_parser

    steps = [
        [
            "optimize",
            "--model",
            "smollm2",
            "--target",
            args.target,
            "--max-kl",
            str(args.max_kl),
            "--plan-model",
            "llama-3-8b",
            "--out",
            args.out,
            "--overwrite",
        ],
        [
            "generate",
            "--model",
            args.out,
            "--prompt",
            "What is the capital of France?",
            "--max-new-tokens",
            "48",
        ],
    ]
    parser = build_parser()
    for argv in steps:
        print(f"\n== trico {' '.join(argv)}", flush=True)
        step = parser.parse_args(argv)
        code = int(step.func(step) or 0)
        if code:
            return code
    print(f"\nreport: {args.out}/report.md   checkpoint: {args.out}/")
    return 0
