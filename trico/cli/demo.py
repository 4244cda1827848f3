"""`trico demo`: the main job on the default model (what `make demo` runs)."""

from __future__ import annotations

import argparse

from trico.cli.generate import run_generate


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the demo sub-command."""
    p = subparsers.add_parser(
        "demo",
        help="run the main job on the default SmolLM2 model (what `make demo` runs)",
        description="Answer a question with SmolLM2, then measure its perplexity on WikiText-2.",
    )
    p.add_argument("--windows", type=int, default=40, help="perplexity windows (default 40)")
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    """Generate an answer, then evaluate perplexity."""
    from trico.cli.evaluate import run_eval

    common = dict(model="smollm2", device="auto", dtype="auto")
    print("== trico generate: 'What is the capital of France?'")
    run_generate(
        argparse.Namespace(
            **common,
            prompt="What is the capital of France?",
            raw=False,
            system=None,
            no_stream=False,
            json=False,
            max_new_tokens=64,
            temperature=0.0,
            top_k=None,
            top_p=None,
            seed=None,
            stop=[],
            max_context=512,
        )
    )
    print(f"\n== trico eval: perplexity on wikitext2-test ({args.windows} x 512-token windows)")
    return run_eval(
        argparse.Namespace(
            **common,
            file=None,
            ctx=512,
            stride=None,
            windows=args.windows,
            reference=None,
            json=False,
        )
    )
