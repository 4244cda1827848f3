"""`trico plan` (sweep + Pareto + plots), `trico calibrate` (fit the model to benchmarks), `trico optimize`."""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from trico.errors import TricoError

DEFAULT_QUALITY = Path("docs/quality.json")


def _list(text: str, cast: Callable[[str], float | int], what: str, low: float) -> list:
    out = []
    for item in filter(None, (t.strip() for t in str(text).split(","))):
        try:
            value = cast(item)
        except ValueError:
            raise TricoError(f"{what}: {item!r} is not a {'whole ' if cast is int else ''}number") from None
        if not math.isfinite(value) or value < low:
            raise TricoError(f"{what}: {item!r} must be >= {low:g}")
        out.append(value)
    if not out:
        raise TricoError(f"{what}: give at least one value")
    return out


def _names(text: str) -> list[str]:
    return [t.strip() for t in str(text).split(",") if t.strip()]


def _positive(what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"{what} must be > 0, got {text!r}")
        return value

    return parse


TABLE_COLUMNS = [
    ("model", "model"),
    ("scheme", "scheme"),
    ("hardware", "hardware"),
    ("batch", "batch"),
    ("prompt", "prompt"),
    ("context", "ctx"),
    ("ttft_ms", "TTFT ms"),
    ("tpot_ms", "TPOT ms"),
    ("decode_tok_s", "tok/s"),
    ("memory_GB", "mem GB"),
    ("fits", "fits"),
    ("usd_per_Mtok", "$/Mtok"),
    ("J_per_token", "J/tok"),
    ("decode_bound", "decode bound"),
    ("pareto", "pareto"),
]


def _hardware_list(args: argparse.Namespace) -> list:
    from dataclasses import replace

    from trico.perf.hardware import get_hardware, load_hardware_file

    names = args.hardware if args.hardware is not None else ("" if args.hardware_file else "h100-sxm")
    devices = [get_hardware(n) for n in _names(names)]
    devices += [load_hardware_file(p) for p in args.hardware_file or []]
    if not devices:
        raise TricoError("give --hardware NAME[,NAME...] and/or --hardware-file FILE")
    if args.price_per_hour is not None:
        devices = [
            replace(
                h,
                price_per_hour_usd=args.price_per_hour,
                sources={**h.sources, "price_per_hour_usd": "--price-per-hour"},
            )
            for h in devices
        ]
    return devices


def _spec_list(args: argparse.Namespace) -> list:
    from trico.perf.workload import SpecDecode

    if not args.spec_draft_len:
        return [None]
    specs: list = [None] if args.spec_compare else []
    for k in _list(args.spec_draft_len, int, "--spec-draft-len", 1):
        for a in _list(args.spec_acceptance, float, "--spec-acceptance", 0.0):
            specs.append(SpecDecode(draft_len=int(k), acceptance=float(a), draft_cost=args.spec_draft_cost))
    return specs


def cmd_plan(args: argparse.Namespace) -> int:
    """Sweep, print the table, write CSV/JSON/plots."""
    t0 = time.perf_counter()
    from trico.config import get_config
    from trico.perf import dse

    space = dse.Space(
        models=[get_config(n) for n in _names(args.model)],
        schemes=_names(args.scheme),
        hardware=_hardware_list(args),
        batches=[int(b) for b in _list(args.batch, int, "--batch", 1)],
        prompts=[int(p) for p in _list(args.prompt, int, "--prompt", 1)],
        new_tokens=[int(n) for n in _list(args.new_tokens, int, "--new-tokens", 1)],
        kv_keep=_list(args.kv_keep, float, "--kv-keep", 1e-9),
        tp=[int(t) for t in _list(args.tp, int, "--tp", 1)],
        spec=_spec_list(args),
        reserve_GB=args.reserve_gb,
    )
    objectives = _names(args.objectives)
    if len(objectives) < 2:
        raise TricoError("--objectives needs at least two names, e.g. tpot,tokens_per_usd")
    constraints = dse.Constraints(
        must_fit=True,
        max_tpot_ms=args.max_tpot_ms,
        max_ttft_ms=args.max_ttft_ms,
        max_memory_GB=args.max_memory_gb,
        max_kl=args.max_kl,
    )
    quality = dse.load_quality(args.quality)
    points = dse.sweep(space, constraints, objectives, quality, calibrated=not args.roofline)
    rows = []
    for p in points:
        row = p.estimate.row()
        row["pareto"] = "*" if p.pareto else ""
        row["excluded"] = "; ".join(p.violations)
        row.update({f"obj_{k}": v for k, v in p.objectives.items()})
        rows.append(row)
    shown = sorted(rows, key=lambda r: (not r["pareto"], not r["fits"], r["tpot_ms"]))[: args.top]
    from trico.perf.tables import text_table, write_csv, write_json

    print(text_table(shown, TABLE_COLUMNS))
    if len(rows) > len(shown):
        print(f"... {len(rows) - len(shown)} more rows (--top N, or --csv/--json for all)")
    effs = {p.estimate.hardware: p.estimate.efficiency for p in points}
    for hw, src in effs.items():
        print(f"model for {hw}: {src}")
    from trico.perf.model import ROOFLINE

    if len({src == ROOFLINE.source for src in effs.values()}) > 1:
        print(
            "warning: this sweep compares calibrated and uncalibrated devices; the datasheet roofline is "
            "optimistic (docs/perf-model.md gives its measured error on the H100)"
        )
    misfits = [p for p in points if not p.estimate.fits]
    for p in misfits[:5]:
        e = p.estimate
        print(
            f"does not fit: {e.model} {e.scheme} on {e.hardware}, batch {e.workload.batch}: {e.memory.describe()}"
        )
    if len(misfits) > 5:
        print(f"... {len(misfits) - 5} more configurations do not fit")
    if quality and ({"kl", "top1", "dppl"} & set(objectives) or args.max_kl):
        print(
            f"quality from {args.quality} ({len(quality)} schemes), measured on trico's default model: it "
            "ranks schemes but does not transfer as-is to other models"
        )
    front = sum(p.pareto for p in points)
    print(
        f"{len(points)} configurations, {len(points) - len(misfits)} fit, {front} on the Pareto front ({', '.join(objectives)})"
    )
    if args.csv:
        write_csv(rows, args.csv)
    if args.json:
        write_json({"objectives": objectives, "rows": rows}, args.json)
    if args.plot_dir:
        from trico.perf import plots

        out = Path(args.plot_dir)
        plots.pareto_chart(points, objectives[0], objectives[1], out / "pareto.png")
        best = next((p for p in points if p.pareto), points[0]).estimate
        hw0 = next(h for h in space.hardware if h.name == best.hardware)
        plots.roofline_chart(hw0, [best], out / "roofline-operators.png", per_operator=True)
        chosen = [p.estimate for p in points if p.pareto][:10] or [best]
        plots.roofline_chart(
            hw0,
            [e for e in chosen if e.hardware == hw0.name],
            out / "roofline-configs.png",
            per_operator=False,
        )
        print(f"plots written to {out}/")
    if args.what_if:
        knob, _, values = args.what_if.partition("=")
        factors = _list(values, float, "--what-if", 1e-9)
        base = points[0].estimate
        steps = dse.hardware_what_if(
            space.models[0],
            space.schemes[0],
            base.workload,
            space.hardware[0],
            knob.strip(),
            factors,
            not args.roofline,
        )
        print(
            f"\nwhat-if on {space.hardware[0].name} ({knob}), {base.model} {base.scheme} batch {base.workload.batch}:"
        )
        wrows = [
            {
                "factor": s.factor,
                "ttft_ms": s.estimate.ttft_s * 1e3,
                "tpot_ms": s.estimate.tpot_s * 1e3,
                "prefill_bound": s.estimate.prefill.bound,
                "decode_bound": s.estimate.decode.bound,
            }
            for s in steps
        ]
        print(
            text_table(
                wrows,
                [
                    ("factor", knob + " x"),
                    ("ttft_ms", "TTFT ms"),
                    ("tpot_ms", "TPOT ms"),
                    ("prefill_bound", "prefill bound"),
                    ("decode_bound", "decode bound"),
                ],
            )
        )
        if args.plot_dir:
            from trico.perf import plots

            plots.what_if_chart(steps, knob.strip(), Path(args.plot_dir) / f"what-if-{knob.strip()}.png")
    print(f"({time.perf_counter() - t0:.2f} s)", file=sys.stderr)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Fit the efficiency factors of one device to benchmark result files and store them."""
    from trico.perf import calibration
    from trico.perf.efficiency import CALIBRATION_DIR
    from trico.perf.hardware import get_hardware
    from trico.perf.tables import write_json

    hw = get_hardware(args.hardware)
    files = [Path(p) for p in args.results]
    ms = calibration.load_measurements(files)
    if args.models:
        wanted = set(_names(args.models))
        ms = [m for m in ms if m.model.name in wanted]
    ms = calibration.for_hardware(ms, hw)
    result = calibration.fit(ms, hw)
    eff = result.efficiency
    out = Path(args.out) if args.out else CALIBRATION_DIR / f"{hw.name.split(':', 1)[0]}.json"
    write_json(result.to_dict(), out)
    print(
        f"fitted {result.n_measurements} measurements on {hw.name}: bandwidth {eff.bw:.3f} x datasheet "
        f"(half at {eff.bw_half_MB:.3g} MB), FLOP/s {eff.flops:.3f} x peak, launch {eff.launch_us:.2f} us"
    )
    tables = (
        ("1 row", eff.gemv_ps),
        ("2-16 rows", eff.mma_ps),
        ("per row > 16", eff.row_ps),
        ("prefill", eff.prefill_dequant_ps),
    )
    for fmt in sorted({f for _, table in tables for f in table}):
        costs = ", ".join(f"{label} {table[fmt]:.3g}" for label, table in tables if fmt in table)
        print(f"  {fmt}: {costs} (ps per weight)")
    print(
        f"fit error: TPOT MAPE {result.tpot_mape or 0:.1f}%, TTFT MAPE {result.ttft_mape or 0:.1f}%  -> {out}"
    )
    return 0


def cmd_optimize(args: argparse.Namespace) -> int:
    """Quantize with candidate schemes, measure quality, predict speed/cost, write the chosen checkpoint."""
    from trico.optimize import OptimizeOptions, run_optimize

    opts = OptimizeOptions(
        model=args.model,
        target=args.target,
        max_kl=args.max_kl,
        schemes=tuple(_names(args.schemes)) if args.schemes else None,
        out=Path(args.out),
        windows=args.windows,
        ctx=args.ctx,
        batch=args.batch,
        prompt=args.prompt,
        new_tokens=args.new_tokens,
        plan_model=args.plan_model,
        measure=not args.no_measure,
        overwrite=args.overwrite,
        tie_tolerance=args.tie_tolerance,
    )
    run_optimize(opts)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `plan`, `calibrate` and `optimize`."""
    p = subparsers.add_parser(
        "plan",
        help="predict latency, throughput, memory, $ and energy over a sweep; Pareto front and plots",
        description="Sweep every combination of the comma-separated values; mark what does not fit; keep the "
        "Pareto front of the objectives. Uses the stored calibration of each device (--roofline: datasheet only).",
    )
    p.add_argument(
        "--model", default="llama-2-7b", help="model presets, comma-separated (default llama-2-7b)"
    )
    p.add_argument(
        "--scheme",
        default="bf16,int8,int4-awq-g128",
        help="schemes/formats, comma-separated; per-layer precision as BASE+L<i>/<j>:SCHEME (int4-g128+L0/31:int8)",
    )
    p.add_argument(
        "--hardware",
        help="devices or what-ifs (h100-sxm:bw=2x), comma-separated; default h100-sxm unless --hardware-file",
    )
    p.add_argument(
        "--hardware-file", action="append", help="a device file (JSON/TOML, catalog schema); repeatable"
    )
    p.add_argument(
        "--price-per-hour", type=_positive("--price-per-hour"), help="override every device's $/hour"
    )
    p.add_argument("--batch", default="1", help="batch sizes, comma-separated")
    p.add_argument("--prompt", default="512", help="prompt lengths, comma-separated")
    p.add_argument("--new-tokens", default="256", help="generated tokens per sequence, comma-separated")
    p.add_argument("--kv-keep", default="1", help="SnapKV keep ratios of the prompt KV, comma-separated")
    p.add_argument("--tp", default="1", help="tensor-parallel degrees, comma-separated")
    p.add_argument(
        "--spec-draft-len", default="", help="speculative decoding: draft lengths, comma-separated"
    )
    p.add_argument("--spec-acceptance", default="0.7", help="speculative decoding: acceptance rates")
    p.add_argument(
        "--spec-draft-cost", type=float, default=0.05, help="draft step cost / target step (default 0.05)"
    )
    p.add_argument("--spec-compare", action="store_true", help="also sweep without speculative decoding")
    p.add_argument("--reserve-gb", type=float, default=0.0, help="memory held back per device (GB)")
    p.add_argument(
        "--objectives", default="tpot,tokens_per_usd", help="two or more objectives for the Pareto front"
    )
    p.add_argument(
        "--max-tpot-ms", type=_positive("--max-tpot-ms"), help="latency SLO on time per output token"
    )
    p.add_argument(
        "--max-ttft-ms", type=_positive("--max-ttft-ms"), help="latency SLO on time to first token"
    )
    p.add_argument("--max-memory-gb", type=_positive("--max-memory-gb"), help="memory limit per device")
    p.add_argument("--max-kl", type=_positive("--max-kl"), help="quality limit (measured KL, from --quality)")
    p.add_argument(
        "--quality", default=str(DEFAULT_QUALITY), help="measured quality table (docs/quality.json)"
    )
    p.add_argument("--roofline", action="store_true", help="ignore calibration: datasheet roofline only")
    p.add_argument(
        "--what-if", help="hardware what-if on the first device, e.g. bw=0.5,1,2,4 or flops=0.5,1,2"
    )
    p.add_argument("--top", type=int, default=25, help="rows shown on screen (default 25)")
    p.add_argument("--csv", help="write every row as CSV")
    p.add_argument("--json", help="write every row as JSON")
    p.add_argument("--plot-dir", help="write pareto.png, roofline-*.png (and what-if-*.png) here")
    p.set_defaults(func=cmd_plan)

    c = subparsers.add_parser(
        "calibrate",
        help="fit the performance model's efficiency factors to GPU benchmark results",
        description="Reads benchmarks/results/*.json (BENCH.md schema), keeps the runs on --hardware, fits "
        "bandwidth/FLOP-s efficiency, transfer-size effect, launch overhead and per-format dequant cost.",
    )
    c.add_argument("results", nargs="+", help="benchmark result JSON files")
    c.add_argument("--hardware", default="h100-sxm", help="device the results were measured on")
    c.add_argument("--models", help="only fit these model presets (comma-separated)")
    c.add_argument("--out", help="where to write the fit (default trico/perf/fitted/<device>.json)")
    c.set_defaults(func=cmd_calibrate)

    o = subparsers.add_parser(
        "optimize",
        help="pick the fastest/cheapest compression within a quality budget; write checkpoint + report",
        description="Quantizes the model with each candidate scheme, measures KL/top-1/PPL against the "
        "unquantized model on WikiText-2 test, predicts speed and cost on --target, and writes OUT/ with the "
        "chosen checkpoint, report.md (tables + plots) and report.json.",
    )
    o.add_argument("--model", default="smollm2", help="model to compress (default smollm2)")
    o.add_argument("--target", default="h100-sxm", help="hardware to plan for (catalog name or what-if)")
    o.add_argument(
        "--max-kl", type=_positive("--max-kl"), default=0.05, help="quality budget: mean KL (nats/token)"
    )
    o.add_argument("--schemes", help="candidate schemes, comma-separated (default: a built-in list)")
    o.add_argument("--out", default="out/optimize", help="output folder (default out/optimize)")
    o.add_argument("--windows", type=int, default=8, help="evaluation windows per scheme (default 8)")
    o.add_argument("--ctx", type=int, default=512, help="evaluation window length (default 512)")
    o.add_argument("--batch", type=int, default=1, help="serving batch for the speed/cost prediction")
    o.add_argument("--prompt", type=int, default=512, help="prompt tokens for the prediction")
    o.add_argument("--new-tokens", type=int, default=256, help="generated tokens for the prediction")
    o.add_argument(
        "--plan-model", help="also predict a larger preset with the same schemes (e.g. llama-3-8b)"
    )
    o.add_argument("--no-measure", action="store_true", help="on a GPU, do not time the checkpoints")
    o.add_argument(
        "--tie-tolerance",
        type=float,
        default=0.02,
        help="predictions within this fraction of the best are a tie, won by the lower KL (default 0.02)",
    )
    o.add_argument(
        "--overwrite", action="store_true", help="replace OUT if it holds an earlier optimize result"
    )
    o.set_defaults(func=cmd_optimize)
