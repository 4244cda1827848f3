"""Where a decode step's time goes: kernels per step, their summed time, and the idle time between them.

Runs the CUDA-graph decode step of a random-weight model (as benchmarks/decode.py builds it) under
torch.profiler and groups the kernels of a few replayed steps by name. The gap between the step's
wall time and the summed kernel time is launch latency and tails, which fusing kernels removes.

With `--pdl on,late,off` every format is profiled with programmatic dependent launch signalling
dependents right after each kernel's wait (on), at each program's exit (late), and without it
(trico/kernels/pdl.py), for a same-run comparison; under PDL a kernel's time includes the wait for
its predecessor, so compare the wall times, not the kernel sums. `--attention three,one` does the
same for the three-kernel and the one-launch decode attention (trico.engine.fused.ONE_LAUNCH_ATTENTION),
and `--prologues on,off,norm,silu` for RMSNorm and the SiLU gate inside the projections (both,
neither, only one) vs as kernels of their own (trico/kernels/prologue.py), and `--word-gemv lean,old`
for the one-row word GEMV's loop (trico.kernels.gemv.LEAN_LOOP), `--half2 on,off` for the f16x2 GEMV
of one-row 4- and 2-bit layers (trico.kernels.dispatch.HALF2_GEMV), `--split-programs 256,512,1024`
for the grid size the one-row GEMVs' split-K aims for (trico.kernels.dispatch.SPLIT_K_PROGRAMS), and
`--argmax kernel,torch` for the greedy token's argmax (trico.kernels.argmax.KERNEL), and `--gate-epilogue
on,off` for the SiLU gate written by the gate/up projection's kernel (trico.kernels.dispatch.GATE_EPILOGUE).

Example (on the GPU machine):
    python benchmarks/profile_decode.py --model llama-2-7b --formats bf16,int8,int4-g128,tern2 \
        --pdl on,off --out /tmp/profile.json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from trico.engine import fused  # noqa: E402
from trico.engine.benchmark import (  # noqa: E402
    build_random_model,
    model_config,
    parse_scheme,
    restore_linears,
    swap_linears,
)
from trico.engine.cuda_graphs import enable_fast_decode  # noqa: E402
from trico.engine.generator import Generator  # noqa: E402
from trico.engine.kv_cache import StaticKVCache  # noqa: E402
from trico.engine.sampler import Sampler  # noqa: E402
from trico.kernels import (  # noqa: E402
    argmax,
    dispatch,
    fused_prologues,
    gemv,
    int8_activations,
    pdl,
    programmatic_launch,
    prologue,
)

PDL_MODES = {"on": (True, True), "late": (True, False), "off": (False, True)}
"""--pdl value -> (programmatic launch, early trigger)."""

PROLOGUE_MODES = {
    "on": {prologue.NORM, prologue.SILU},
    "off": set(),
    "norm": {prologue.NORM},
    "silu": {prologue.SILU},
}
"""--prologues value -> the ops handed to the consuming projections."""


def _short(name: str) -> str:
    """A kernel name without template arguments and launch-shape suffixes, for grouping."""
    name = re.sub(r"<.*", "", name)
    name = re.sub(r"\(.*", "", name)
    return name[:60]


@torch.no_grad()
def profile_format(
    model,  # noqa: ANN001 - the built Transformer
    fmt: str,
    batch: int,
    prompt: int,
    steps: int,
    decode: str,
    pdl_mode: str,
    one_launch: bool,
    prologues: str = "on",
    lean: bool = True,
    half2: bool = True,
    split_programs: int = 0,
    argmax_kernel: bool = True,
    gate_epilogue: bool = True,
) -> dict:
    """Kernels of `steps` graph-replayed decode steps of one weight format under one launch setting."""
    on, early = PDL_MODES[pdl_mode]
    saved_programs, saved_argmax, saved_gate = (
        dispatch.SPLIT_K_PROGRAMS,
        argmax.KERNEL,
        dispatch.GATE_EPILOGUE,
    )
    dispatch.SPLIT_K_PROGRAMS, argmax.KERNEL = split_programs or saved_programs, argmax_kernel
    dispatch.GATE_EPILOGUE = gate_epilogue
    saved = pdl.EARLY_TRIGGER, fused.ONE_LAUNCH_ATTENTION, prologue.KINDS, gemv.LEAN_LOOP, dispatch.HALF2_GEMV
    pdl.EARLY_TRIGGER, fused.ONE_LAUNCH_ATTENTION = early, one_launch
    prologue.KINDS, gemv.LEAN_LOOP, dispatch.HALF2_GEMV = PROLOGUE_MODES[prologues], lean, half2
    try:
        with programmatic_launch(on), fused_prologues(prologues != "off"):  # the captured graph keeps them
            row = _profile(model, fmt, batch, prompt, steps, decode)
    finally:
        pdl.EARLY_TRIGGER, fused.ONE_LAUNCH_ATTENTION, prologue.KINDS, gemv.LEAN_LOOP, dispatch.HALF2_GEMV = (
            saved
        )
        split_programs, dispatch.SPLIT_K_PROGRAMS = dispatch.SPLIT_K_PROGRAMS, saved_programs
        argmax.KERNEL, dispatch.GATE_EPILOGUE = saved_argmax, saved_gate
    return {
        **row,
        "pdl": on,
        "pdl_mode": pdl_mode,
        "one_launch_attention": one_launch,
        "prologues": prologues,
        "word_gemv": "lean" if lean else "old",
        "half2": half2,
        "split_programs": split_programs,
        "argmax": "kernel" if argmax_kernel else "torch",
        "gate_epilogue": gate_epilogue,
    }


def _profile(model, fmt: str, batch: int, prompt: int, steps: int, decode: str) -> dict:  # noqa: ANN001
    """profile_format under the current launch settings."""
    scheme = parse_scheme(fmt)
    originals = swap_linears(model, scheme)
    config = model.config
    cache = StaticKVCache(config, batch, prompt + steps + 16, dtype=torch.bfloat16, device="cuda")
    gen = Generator(model, cache, Sampler(device=torch.device("cuda")))
    enable_fast_decode(gen, decode)
    gen.prefill(torch.randint(0, config.vocab_size, (batch, prompt), device="cuda"))
    with int8_activations(scheme.int8_activations):  # the graph captured here keeps the choice
        for _ in range(3):
            gen.decode()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    walls = []
    for _ in range(5):
        gen.pos = prompt
        start.record()
        for _ in range(steps):
            gen.decode()
        end.record()
        torch.cuda.synchronize()
        walls.append(start.elapsed_time(end) / steps)
    from torch.profiler import ProfilerActivity, profile

    gen.pos = prompt
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            gen.decode()
        torch.cuda.synchronize()
    per_name: dict[str, list[float]] = defaultdict(list)
    timeline = []
    for ev in prof.events():
        if ev.device_type == torch.autograd.DeviceType.CUDA and ev.device_time_total > 0:
            name = ev.name[:40] if "Memcpy" in ev.name or "Memset" in ev.name else _short(ev.name)
            per_name[name].append(ev.device_time_total)
            timeline.append((name, ev.time_range.start, ev.time_range.end))
    kernels = sorted(
        (
            {
                "name": n,
                "per_step": len(v) / steps,
                "us_per_step": sum(v) / steps,
                "median_us": statistics.median(v),
            }
            for n, v in per_name.items()
        ),
        key=lambda r: -r["us_per_step"],
    )
    busy = sum(k["us_per_step"] for k in kernels)
    critical = critical_path(timeline, steps)
    restore_linears(model, originals)
    del gen, cache
    torch.cuda.empty_cache()
    wall = statistics.median(walls) * 1e3
    return {
        "format": fmt,
        "batch": batch,
        "decode": decode,
        "wall_us_per_step": wall,
        "kernel_us_per_step": busy,
        "kernels_per_step": sum(k["per_step"] for k in kernels),
        "idle_us_per_step": wall - busy,
        "kernels": kernels,
        **critical,
    }


def critical_path(timeline: list[tuple[str, float, float]], steps: int, layer_period: int = 0) -> dict:
    """Each kernel's share of the step's critical path: the time from the previous kernel's end to its own.

    Kernels of one stream finish in launch order (under PDL each waits for its predecessor before it
    ends), so end_i - end_(i-1) is what kernel i adds to the step, whatever time it spent launched and
    waiting. Returns the shares summed per kernel name per step and, for one layer in the middle of the
    step (the kernel sequence's period, found from the names, or `layer_period`), each kernel in order.
    """
    events = sorted(timeline, key=lambda e: (e[2], e[1]))
    shares: list[tuple[str, float]] = []
    prev_end = None
    for name, start, end in events:
        shares.append((name, end - (start if prev_end is None else prev_end)))
        prev_end = end
    per_name: dict[str, float] = defaultdict(float)
    for name, share in shares:
        per_name[name] += share / steps
    names = [n for n, _ in shares]
    period = layer_period or _period(names)
    layer = []
    if period:
        mid = (len(shares) // steps) // 2  # a kernel index in the middle of the first step
        first = mid - mid % period + _phase(names, period)
        layer = [{"name": n, "us": s} for n, s in shares[first : first + period]]
    return {
        "critical_us_per_step": dict(sorted(per_name.items(), key=lambda kv: -kv[1])),
        "layer_period": period,
        "critical_layer": layer,
    }


def _period(names: list[str]) -> int:
    """The shortest period (up to 24) at which the kernel names repeat over most of the sequence (0: none)."""
    for p in range(2, 25):
        same = sum(a == b for a, b in zip(names, names[p:]))
        if len(names) > 4 * p and same >= 0.9 * (len(names) - p):
            return p
    return 0


def _phase(names: list[str], period: int) -> int:
    """Where a layer's period of the kernel sequence starts: at its first RMSNorm kernel, else 0."""
    for i, n in enumerate(names[:period]):
        if "rmsnorm" in n:
            return i
    return 0


def main(argv: list[str] | None = None) -> int:
    """Profile each format; print a summary and the top kernels; write JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="llama-2-7b")
    p.add_argument("--formats", default="bf16,int8,int4-g128,tern2")
    p.add_argument("--batch", default=1, type=int)
    p.add_argument("--prompt", default=128, type=int)
    p.add_argument("--steps", default=20, type=int)
    p.add_argument("--decode", default="graph", choices=["graph", "eager"])
    p.add_argument("--top", default=14, type=int)
    p.add_argument("--pdl", default="on", help="comma-separated: on, late, off (several: a same-run A/B)")
    p.add_argument(
        "--attention",
        default="three",
        help="comma-separated: three (RoPE, attention, merge kernels), one (one launch)",
    )
    p.add_argument(
        "--prologues",
        default="on",
        help="comma-separated: on (norm and gate inside the projections), off (kernels of their own), norm, silu",
    )
    p.add_argument(
        "--word-gemv", default="lean", help="comma-separated: lean (gemv.LEAN_LOOP), old (the loop before it)"
    )
    p.add_argument("--half2", default="on", help="comma-separated: on (dispatch.HALF2_GEMV), off")
    p.add_argument(
        "--split-programs",
        default="0",
        help="comma-separated: programs a one-row GEMV's split-K aims for (dispatch.SPLIT_K_PROGRAMS; 0: its default)",
    )
    p.add_argument("--argmax", default="kernel", help="comma-separated: kernel (argmax.KERNEL), torch")
    p.add_argument("--gate-epilogue", default="on", help="comma-separated: on (dispatch.GATE_EPILOGUE), off")
    p.add_argument("--out", default="")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("profile_decode: no CUDA GPU here; nothing to profile", file=sys.stderr)
        return 2
    model = build_random_model(model_config(args.model), torch.device("cuda"))
    rows = []
    modes = [v for v in args.pdl.split(",") if v]
    attentions = [v for v in args.attention.split(",") if v]
    prologues = [v for v in args.prologues.split(",") if v]
    bad = [v for v in modes if v not in PDL_MODES] + [v for v in attentions if v not in ("three", "one")]
    loops = [v for v in args.word_gemv.split(",") if v]
    half2s = [v for v in args.half2.split(",") if v]
    bad += [v for v in prologues if v not in PROLOGUE_MODES] + [v for v in loops if v not in ("lean", "old")]
    bad += [v for v in half2s if v not in ("on", "off")]
    programs = [v for v in args.split_programs.split(",") if v]
    bad += [v for v in programs if not v.isdigit()]
    argmaxes = [v for v in args.argmax.split(",") if v]
    bad += [v for v in argmaxes if v not in ("kernel", "torch")]
    gates = [v for v in args.gate_epilogue.split(",") if v]
    bad += [v for v in gates if v not in ("on", "off")]
    if bad:
        p.error(
            f"unknown --pdl/--attention/--prologues/--word-gemv/--half2/--split-programs/--argmax/--gate-epilogue value(s): {', '.join(bad)}"
        )
    cases = [
        (f, m, a, pro, loop, h2, int(sp), am, ge)
        for f in args.formats.split(",")
        if f
        for a in attentions
        for m in modes
        for pro in prologues
        for loop in loops
        for h2 in half2s
        for sp in programs
        for am in argmaxes
        for ge in gates
    ]
    for fmt, mode, attention, pro, loop, h2, sp, am, ge in cases:
        r = profile_format(
            model,
            fmt,
            args.batch,
            args.prompt,
            args.steps,
            args.decode,
            mode,
            attention == "one",
            pro,
            loop == "lean",
            h2 == "on",
            sp,
            am == "kernel",
            ge == "on",
        )
        rows.append(r)
        print(
            f"\n{args.model} {fmt} b{args.batch} pdl {mode} attention {attention} prologues {pro} word-gemv {loop} half2 {h2} "
            f"split-programs {r['split_programs']} argmax {r['argmax']} gate-epilogue {'on' if r['gate_epilogue'] else 'off'}: "
            f"wall {r['wall_us_per_step']:.0f} us/step, kernels "
            f"{r['kernel_us_per_step']:.0f} us in {r['kernels_per_step']:.0f} launches, idle {r['idle_us_per_step']:.0f} us"
        )
        for k in r["kernels"][: args.top]:
            print(
                f"  {k['us_per_step']:8.1f} us  x{k['per_step']:5.0f}  med {k['median_us']:6.1f}  {k['name']}"
            )
        crit = list(r["critical_us_per_step"].items())
        print("  critical path per step: " + ", ".join(f"{n} {us:.0f}" for n, us in crit[: max(args.top, 6)]))
        if r["critical_layer"]:
            print("  one layer: " + ", ".join(f"{k['name']} {k['us']:.1f}" for k in r["critical_layer"]))
    if args.out:
        Path(args.out).write_text(json.dumps({"model": args.model, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
