"""Perplexity windows on the GPU: eager against replayed from a CUDA graph (`trico eval`'s default), same run.

For each model preset and weight format the model has random weights (as benchmarks/decode.py builds it)
and the engine's fused layers, as `trico eval` runs them on CUDA. `evaluate()` scores --windows windows of
--ctx random tokens with graphs off and on, alternating, --repeats times each after one warm-up call of
each; a call's wall time includes its first window (eager) and the capture on its second, as a `trico
eval` run has them. The NLL of both modes is recorded: they must agree.
Usage: python benchmarks/eval_windows.py [--models smollm2-135m,llama-2-7b] [--formats bf16,int4-g128]
       [--ctx 512] [--windows 40] [--repeats 2] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from trico.engine.benchmark import (  # noqa: E402
    build_random_model,
    environment,
    model_config,
    parse_scheme,
    swap_linears,
)
from trico.engine.fused import fuse_model_  # noqa: E402
from trico.errors import TricoError  # noqa: E402
from trico.eval.perplexity import evaluate  # noqa: E402


def _timed_eval(model, tokens: torch.Tensor, ctx: int, windows: int, graphs: bool) -> tuple[float, float]:  # noqa: ANN001
    """Wall seconds of one evaluate() call and its NLL."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    result = evaluate(model, tokens, ctx=ctx, windows=windows, progress=False, graphs=graphs)
    torch.cuda.synchronize()
    return time.perf_counter() - t0, result.nll


def measure(preset: str, fmt: str, ctx: int, windows: int, repeats: int) -> dict:
    """Seconds a window, eager and graphed, for one model and format."""
    config = model_config(preset)
    if ctx > config.max_seq_len:
        raise TricoError(f"--ctx {ctx} is longer than {preset}'s {config.max_seq_len} positions")
    model = build_random_model(config, torch.device("cuda"))
    swap_linears(model, parse_scheme(fmt))
    fuse_model_(model)
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, config.vocab_size, (ctx * windows,), generator=gen)
    for graphs in (False, True):  # Triton compiles, cuBLAS and allocator warm-up
        _timed_eval(model, tokens, ctx, 3, graphs)
    runs: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(repeats):
        for graphs in (False, True):
            runs[graphs].append(_timed_eval(model, tokens, ctx, windows, graphs))
    eager = statistics.median(t for t, _ in runs[False])
    graphed = statistics.median(t for t, _ in runs[True])
    del model
    torch.cuda.empty_cache()
    return {
        "bench": "eval_windows",
        "model": preset,
        "scheme": fmt,
        "ctx": ctx,
        "windows": windows,
        "eager_s": eager,
        "graphed_s": graphed,
        "eager_ms_per_window": 1e3 * eager / windows,
        "graphed_ms_per_window": 1e3 * graphed / windows,
        "speedup": eager / graphed,
        "nll_eager": runs[False][0][1],
        "nll_graphed": runs[True][0][1],
        **environment(torch.device("cuda")),
    }


def main(argv: list[str] | None = None) -> int:
    """Measure every (model, format) pair and write the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="smollm2-135m,llama-2-7b", help="comma-separated presets")
    p.add_argument("--formats", default="bf16,int4-g128", help="comma-separated weight formats (decode.py's)")
    p.add_argument("--ctx", default=512, type=int, help="tokens a window (default 512, as trico eval)")
    p.add_argument("--windows", default=40, type=int, help="windows a call (default 40, as trico eval)")
    p.add_argument("--repeats", default=2, type=int, help="timed calls per mode (median)")
    p.add_argument("--out", default="benchmarks/results/eval-windows.json")
    args = p.parse_args(argv)
    try:
        for fmt in args.formats.split(","):
            parse_scheme(fmt)
        for preset in args.models.split(","):
            model_config(preset)
    except (TricoError, KeyError, ValueError) as e:
        print(f"eval_windows: {e}", file=sys.stderr)
        return 2
    if args.ctx < 2 or args.windows < 1 or args.repeats < 1:
        print("eval_windows: --ctx must be >= 2, --windows and --repeats >= 1", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("eval_windows: no CUDA GPU here", file=sys.stderr)
        return 2
    rows = []
    for preset in args.models.split(","):
        for fmt in args.formats.split(","):
            try:
                row = measure(preset, fmt, args.ctx, args.windows, args.repeats)
            except TricoError as e:  # e.g. a group size that does not divide the model's widths
                print(f"{preset:14s} {fmt:10s} skipped: {e}", flush=True)
                continue
            rows.append(row)
            print(
                f"{preset:14s} {fmt:10s} eager {row['eager_ms_per_window']:7.2f} ms/window  graphed "
                f"{row['graphed_ms_per_window']:7.2f}  x{row['speedup']:.2f}  nll {row['nll_eager']:.6f} / "
                f"{row['nll_graphed']:.6f}",
                flush=True,
            )
    if not rows:
        print("eval_windows: no (model, format) pair could run; nothing written", file=sys.stderr)
        return 2
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=1))
    print(f"wrote {len(rows)} rows to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
