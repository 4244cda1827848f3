"""`trico eval`: perplexity on a text file, and KL / top-1 / dPPL against a reference model."""

from __future__ import annotations

import argparse
import time

from trico.cli.common import add_model_args, load_from_args, print_json, print_table
from trico.errors import TricoError

EPILOG = """protocol: the whole file is tokenized without BOS and cut into windows of --ctx tokens,
--stride apart (default: non-overlapping); each window scores the tokens it predicts.

examples:
  trico eval                                  # SmolLM2, wikitext2-test, 40 x 512-token windows
  trico eval --model q4/ --reference smollm2  # a quantized checkpoint against the float model
  trico eval --ctx 1024 --windows 10 --json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the eval sub-command."""
    p = subparsers.add_parser(
        "eval",
        help="perplexity, and KL divergence / top-1 agreement against a reference model",
        description="Evaluate a model on a text file.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    p.add_argument("--file", default=None, help="text file (default: ../shared/data/wikitext2-test.txt)")
    p.add_argument("--ctx", type=int, default=512, help="tokens per window (default 512)")
    p.add_argument("--stride", type=int, default=None, help="tokens between window starts (default: --ctx)")
    p.add_argument("--windows", type=int, default=40, help="number of windows (default 40; 0 = all)")
    p.add_argument("--reference", default=None, help="reference model for KL divergence, top-1 and dPPL")
    p.add_argument(
        "--graphs",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="on CUDA, replay windows from a CUDA graph from the second one on (default on; --no-graphs: "
        "every window launched from Python)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run_eval)


def _engine_layers(model) -> None:  # noqa: ANN001 - a Transformer, or None
    """On CUDA, the engine's fused layers (Triton norms, RoPE, fused projections), as `trico generate` runs
    them; on the CPU the model stays as loaded (the fused layers would run the same torch code)."""
    if model is not None and next(model.parameters()).is_cuda:
        from trico.engine.fused import fuse_model_

        fuse_model_(model)


def run_eval(args: argparse.Namespace) -> int:
    """Evaluate and print a table (or JSON)."""
    from trico.eval.data import load_eval_tokens
    from trico.eval.perplexity import evaluate

    if args.windows is not None and args.windows < 0:
        raise TricoError(f"--windows must be >= 0, got {args.windows}")
    loaded = load_from_args(args, quiet=args.json)
    if loaded.tokenizer is None:
        raise TricoError(f"{loaded.source}: the checkpoint has no tokenizer to encode the text with")
    reference = None
    if args.reference:
        ref_args = argparse.Namespace(**{**vars(args), "model": args.reference})
        reference = load_from_args(ref_args, quiet=True)
        if reference.config.vocab_size != loaded.config.vocab_size:
            raise TricoError("--reference has a different vocabulary size; KL divergence needs the same one")
    tokens = load_eval_tokens(loaded.tokenizer, args.file)
    for model in (loaded.model, reference.model if reference else None):
        _engine_layers(model)
    t0 = time.perf_counter()
    result = evaluate(
        loaded.model,
        tokens,
        ctx=args.ctx,
        windows=args.windows or None,
        stride=args.stride,
        reference=reference.model if reference else None,
        progress=not args.json,
        cache_factory=loaded.extra.get("cache_factory"),  # e.g. a kv-int8 checkpoint's INT8 cache
        graphs=args.graphs,
    )
    elapsed = time.perf_counter() - t0
    record = {
        "model": str(loaded.source),
        "reference": args.reference,
        "file": args.file or "wikitext2-test",
        "seconds": round(elapsed, 2),
        **result.to_dict(),
    }
    if args.json:
        print_json(record)
        return 0
    rows = [
        ("model", str(loaded.source)),
        ("protocol", f"{result.windows} windows x {result.ctx} tokens, stride {result.stride}, no BOS"),
        ("scored tokens", str(result.n_tokens)),
        ("perplexity", f"{result.ppl:.4f}"),
    ]
    if reference is not None:
        rows += [
            ("reference", args.reference),
            ("reference PPL", f"{result.ppl_ref:.4f}"),
            ("dPPL", f"{result.dppl:+.4f} ({100 * result.dppl / result.ppl_ref:+.2f}%)"),
            ("mean KL", f"{result.kl_mean:.6f}"),
            ("KL p99", f"{result.kl_p99:.6f}"),
            ("top-1 agreement", f"{100 * result.top1:.2f}%"),
        ]
    rows.append(("time", f"{elapsed:.1f} s"))
    print_table(rows)
    return 0
