"""Where a prefill's time goes: its wall time and the kernels of one prompt, grouped by name.

Builds the random-weight model as benchmarks/decode.py does, swaps in each weight format, and times a
batch-1 prefill of `--tokens` tokens (median of repeats, CUDA events; `host_ms`: until the call returned,
i.e. the launches' CPU time and any host syncs), then profiles one under
torch.profiler. `--attention causal,masked` compares a prompt's first chunk attending causally over
its own positions (flash kernels, trico.engine.kv_cache.CAUSAL_PREFILL) with the boolean mask over
the whole cache buffer, in the same run; `--graph on,off` the prompt replayed from a CUDA graph (the
engine's `GraphedPrefill`, captured on the warm-up's repeat) with every launch made from Python;
`--prompt-kernel rule,dequant` quantized projections as dispatch picks them (the tensor-core kernel for
short prompts, `dispatch.prompt_tc_choice`) against dequantize + cuBLAS for every prompt (`rule-pdl`,
`rule-nopdl`: the tensor-core launches with and without PDL, whatever `dispatch.PROMPT_PDL` says).

Example (on the GPU machine):
    python benchmarks/profile_prefill.py --model llama-2-7b --formats bf16,w8a8 --attention causal,masked
    python benchmarks/profile_prefill.py --model llama-3-8b --formats bf16,int4-g128 --graph on,off
    python benchmarks/profile_prefill.py --formats int4-g128 --tokens 100,256 --graph on --prompt-kernel rule,dequant
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.profile_decode import _short  # noqa: E402
from trico.engine import cuda_graphs, kv_cache  # noqa: E402
from trico.engine.benchmark import (  # noqa: E402
    build_random_model,
    model_config,
    model_flops,
    parse_scheme,
    restore_linears,
    swap_linears,
)
from trico.engine.cuda_graphs import GraphedPrefill  # noqa: E402
from trico.engine.fused import fuse_model_  # noqa: E402
from trico.engine.kv_cache import StaticKVCache  # noqa: E402
from trico.kernels import dispatch  # noqa: E402


@torch.no_grad()
def profile_prefill(  # noqa: ANN001
    model, fmt: str, tokens: int, causal: bool, repeats: int = 5, host_top: int = 0, graph: bool = False
) -> dict:
    """Wall time and per-kernel time of one batch-1 prefill of the model in weight format `fmt` (swapped in by
    the caller; and, with `host_top`, the functions that took the most host time under cProfile); `graph`:
    replayed from a CUDA graph."""
    config = model.config
    # room for the graph's padding to a whole bucket, as a Generator's cache longer than the prompt has
    room = -(-tokens // cuda_graphs.PREFILL_BUCKET) * cuda_graphs.PREFILL_BUCKET
    cache = StaticKVCache(config, 1, room, dtype=torch.bfloat16, device="cuda")
    x = torch.randint(0, config.vocab_size, (1, tokens), device="cuda")
    # positions made a call, as a real prompt brings them; captured on the second warm-up call with graph
    graphed = GraphedPrefill(
        lambda t, p, last: model.prefill(t, p, cache, last), cache, captures_after=1 if graph else 10**9
    )
    saved, kv_cache.CAUSAL_PREFILL = kv_cache.CAUSAL_PREFILL, causal
    try:
        for _ in range(3):
            graphed(x, 0)
        walls, host = [], []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            t0 = time.perf_counter()
            graphed(x, 0)
            host.append((time.perf_counter() - t0) * 1e3)  # until the last launch returned
            end.record()
            torch.cuda.synchronize()
            walls.append(start.elapsed_time(end))
        host_functions = _host_profile(
            lambda: model.prefill(x, torch.arange(tokens, device="cuda"), cache), host_top
        )
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            model.prefill(x, torch.arange(tokens, device="cuda"), cache)
            torch.cuda.synchronize()
    finally:
        kv_cache.CAUSAL_PREFILL = saved
    per_name: dict[str, list[float]] = defaultdict(list)
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA and ev.device_time_total > 0:
            per_name[_short(ev.name)].append(ev.device_time_total)
    kernels = sorted(
        ({"name": n, "calls": len(v), "ms": sum(v) / 1e3} for n, v in per_name.items()),
        key=lambda r: -r["ms"],
    )
    wall = statistics.median(walls)
    return {
        "format": fmt,
        "tokens": tokens,
        "attention": "causal" if causal else "masked",
        "graph": graph,
        "wall_ms": wall,
        "host_ms": statistics.median(host),
        "TFLOPs": model_flops(config, tokens) / wall / 1e9,
        "kernel_ms": sum(k["ms"] for k in kernels),
        "kernels": kernels,
        "host_functions": host_functions,
    }


def _host_profile(call, top: int) -> list[dict]:  # noqa: ANN001 - a no-argument callable
    """The `top` functions by own host time in one call under cProfile (ms; own and with callees)."""
    if top <= 0:
        return []
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    call()
    prof.disable()
    torch.cuda.synchronize()
    stats = pstats.Stats(prof).stats
    rows = [
        {
            "function": f"{Path(file).name}:{line}:{name}",
            "calls": nc,
            "own_ms": tt * 1e3,
            "total_ms": ct * 1e3,
        }
        for (file, line, name), (_, nc, tt, ct, _) in stats.items()
    ]
    return sorted(rows, key=lambda r: -r["own_ms"])[:top]


def main(argv: list[str] | None = None) -> int:
    """Profile each format and attention mode; print the top kernels, optionally write JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="llama-2-7b")
    p.add_argument("--formats", default="bf16", help="comma-separated benchmark formats (decode.py's names)")
    p.add_argument("--tokens", default="2048", help="prompt lengths, comma-separated")
    p.add_argument("--attention", default="causal", help="comma-separated: causal, masked")
    p.add_argument("--top", default=12, type=int, help="kernels to print per run")
    p.add_argument("--graph", default="off", help="comma-separated: on (CUDA-graph replay), off")
    p.add_argument(
        "--prompt-kernel",
        default="rule",
        help="comma-separated: rule (dispatch's choice and defaults), rule-pdl / rule-nopdl (the same, the "
        "prompt's tensor-core launches with / without PDL), dequant (dequantize + cuBLAS for every prompt)",
    )
    p.add_argument(
        "--host-top", default=0, type=int, help="also list this many functions by host time (cProfile)"
    )
    p.add_argument("--out", default=None, help="write the results JSON here")
    args = p.parse_args(argv)
    modes = args.attention.split(",")
    if set(modes) - {"causal", "masked"}:
        p.error(f"--attention takes causal and/or masked, not {args.attention!r}")
    graphs = args.graph.split(",")
    if set(graphs) - {"on", "off"}:
        p.error(f"--graph takes on and/or off, not {args.graph!r}")
    kernels = args.prompt_kernel.split(",")
    if set(kernels) - {"rule", "rule-pdl", "rule-nopdl", "dequant"}:
        p.error(
            f"--prompt-kernel takes rule, rule-pdl, rule-nopdl and/or dequant, not {args.prompt_kernel!r}"
        )
    try:
        lengths = [int(t) for t in args.tokens.split(",")]
    except ValueError:
        p.error(f"--tokens takes prompt lengths like 100,2048, not {args.tokens!r}")
    if min(lengths) < 1:
        p.error(f"--tokens must be positive, not {args.tokens!r}")
    if not torch.cuda.is_available():
        print("profile_prefill: no CUDA GPU here; nothing to profile", file=sys.stderr)
        return 2
    model = build_random_model(model_config(args.model), torch.device("cuda"))
    rows = []
    runs = [(m, g, k, t) for m in modes for g in graphs for k in kernels for t in lengths]
    for fmt in args.formats.split(","):
        originals = swap_linears(model, parse_scheme(fmt))
        fuse_model_(model)
        for mode, graph, kernel, tokens in runs:
            defaults = dispatch.PROMPT_TENSOR_CORES, dispatch.PROMPT_PDL
            dispatch.PROMPT_TENSOR_CORES = kernel != "dequant"
            dispatch.PROMPT_PDL = {"rule-pdl": True, "rule-nopdl": False}.get(kernel, dispatch.PROMPT_PDL)
            try:
                r = profile_prefill(
                    model, fmt, tokens, mode == "causal", host_top=args.host_top, graph=graph == "on"
                )
            finally:
                dispatch.PROMPT_TENSOR_CORES, dispatch.PROMPT_PDL = defaults
            r["prompt_kernel"] = kernel
            rows.append(r)
            print(f"{fmt:<10} {mode:<7} graph {graph:<3} {kernel:<7} prefill {tokens}: {r['wall_ms']:.2f} ms "
                  f"({r['TFLOPs']:.0f} TFLOP/s), kernels {r['kernel_ms']:.2f} ms, host {r['host_ms']:.2f} ms")  # fmt: skip
            for k in r["kernels"][: args.top]:
                print(f"    {k['ms']:8.3f} ms  {k['calls']:5d}x  {k['name']}")
            for f in r["host_functions"]:
                print(
                    f"    host {f['own_ms']:8.3f} ms own {f['total_ms']:8.3f} total {f['calls']:6d}x  {f['function']}"
                )
        restore_linears(model, originals)
        if args.out:  # after each format, so a run cut short keeps what it measured
            Path(args.out).write_text(json.dumps({"model": args.model, "runs": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
