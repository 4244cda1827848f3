"""CLI: `trico hls compile|csim|dse` (the LLM-to-accelerator compiler). `trico hls lint` comes from
trico.cli.hlsbugs; whichever module registers second joins the same `hls` group."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from trico.errors import TricoError


def _hls_group(subparsers) -> argparse._SubParsersAction:  # noqa: ANN001
    parser = subparsers.choices.get("hls")
    if parser is None:
        parser = subparsers.add_parser("hls", help="HLS compiler and tools")
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="hls_command", metavar="COMMAND")


def register(subparsers) -> None:  # noqa: ANN001
    """Add `hls compile`, `hls csim` and `hls dse`."""
    hls = _hls_group(subparsers)
    c = hls.add_parser(
        "compile", help="compile a decoder layer (or the whole model) to HLS C++ with a testbench"
    )
    c.add_argument("--model", default="smollm2", help="'smollm2' (default), a GGUF file or an HF directory")
    c.add_argument("--part", default="u280", help="FPGA part: u280, u55c, zcu102, zynq7020")
    c.add_argument(
        "--precision",
        default="float",
        help="float, fixed (ap_fixed per tensor from calibration) or ap_fixed<W,I>",
    )
    c.add_argument(
        "--weights",
        default=None,
        help="quantization scheme for the weights, e.g. int8, int4-rtn-g64, ternary-pc",
    )
    c.add_argument(
        "--layer", type=int, default=0, help="which decoder layer a one-layer design holds (default 0)"
    )
    c.add_argument(
        "--whole-model",
        action="store_true",
        help="every layer through the layer engine, plus embedding and head",
    )
    c.add_argument(
        "--ctx", type=int, default=128, help="context of the decode step (KV-cache rows, default 128)"
    )
    c.add_argument("--unroll", type=int, default=8, help="mat-vec lanes (default 8)")
    c.add_argument(
        "--noise-bits",
        type=int,
        default=10,
        help="fixed point: quantization step <= median |value| * 2^-N per tensor (default 10)",
    )
    c.add_argument(
        "--n-new", type=int, default=8, help="whole model: greedy tokens the testbench decodes (default 8)"
    )
    c.add_argument("--out", required=True, type=Path, help="directory to write the design into")
    c.set_defaults(func=_compile)

    s = hls.add_parser("csim", help="compile an emitted design with g++ and run its testbench")
    s.add_argument("dir", type=Path)
    s.add_argument("--opt", default="-O2", help="g++ optimization flag (default -O2)")
    s.set_defaults(func=_csim)

    d = hls.add_parser(
        "dse", help="explore unroll/precision/weight formats on a part; Pareto front of latency vs DSP/BRAM"
    )
    d.add_argument("--model", default="smollm2")
    d.add_argument("--part", default="u280")
    d.add_argument("--ctx", type=int, default=128)
    d.add_argument(
        "--budget",
        type=float,
        default=None,
        help="fraction of the part's resources (default: the part's usable fraction)",
    )
    d.add_argument(
        "--weights", default=None, help="comma-separated: fp32,int8,int4-g64,ternary (default all)"
    )
    d.add_argument(
        "--precisions", default=None, help="comma-separated: float,fixed,ap_fixed<W,I> (default float,fixed)"
    )
    d.add_argument(
        "--unrolls", default=None, help="comma-separated unroll factors (default 1..128, powers of 2)"
    )
    d.add_argument("--out", required=True, type=Path)
    d.set_defaults(func=_dse)

    try:  # issue 7's `hls lint`, if that module exposes a hook for joining this group
        from trico.cli.hlsbugs import register_lint  # type: ignore[attr-defined]
    except ImportError:
        pass
    else:
        if "lint" not in hls.choices:
            register_lint(hls)


def _load(model: str, weights: str | None):  # noqa: ANN202
    from trico.io.loader import load_model

    lm = load_model(model, progress=False)
    if weights:
        from trico.quant import quantize

        quantize(lm.model, weights, None, progress=False)
    return lm


def _compile(args: argparse.Namespace) -> int:
    from trico.hls.design import compile
    from trico.hls.parts import get_part
    from trico.hls.report import write_compile_report
    from trico.hls.workload import calibration_tokens, capture_decode_steps, capture_layers, greedy_reference

    get_part(args.part)
    lm = _load(args.model, args.weights)
    model, cfg = lm.model, lm.model.config
    if not 0 <= args.layer < cfg.n_layers:
        raise TricoError(f"--layer must be in 0..{cfg.n_layers - 1}, got {args.layer}")
    if args.whole_model:
        prompt = calibration_tokens(lm.tokenizer, 16)
        ctx = max(args.ctx, len(prompt) + args.n_new)
        samples, _ = capture_decode_steps(model, prompt, 0, n_steps=1)
        calib = None
        if args.precision != "float":
            # Every layer's ranges, from decode steps over text that follows the prompt (held out from it).
            cal_tokens = calibration_tokens(lm.tokenizer, 64)[len(prompt) :]
            calib = {
                i: v[0] for i, v in capture_layers(model, cal_tokens, list(range(cfg.n_layers)), 4).items()
            }
        design = compile(
            model,
            samples,
            args.precision,
            args.part,
            unroll=args.unroll,
            max_ctx=ctx,
            calib=calib,
            noise_bits=args.noise_bits,
        )
        out = design.emit(args.out, prompt=prompt)
        ref = greedy_reference(model, prompt, args.n_new, ctx)
        np.asarray(ref, dtype=np.int32).tofile(out / "reference_tokens.i32")
        man = json.loads((out / "design.json").read_text())
        man["run"]["arg"] = args.n_new
        (out / "design.json").write_text(json.dumps(man, indent=2))
    else:
        tokens = calibration_tokens(lm.tokenizer, args.ctx)
        # Three earlier decode steps calibrate the fixed-point ranges; the last one (held out) is the
        # testbench input.
        samples, refs = capture_decode_steps(model, tokens, args.layer, n_steps=4)
        design = compile(
            model.model.layers[args.layer],
            samples[-1],
            args.precision,
            args.part,
            config=cfg,
            unroll=args.unroll,
            max_ctx=args.ctx,
            calib=samples[:-1],
            noise_bits=args.noise_bits,
        )
        out = design.emit(args.out)
        refs[-1].float().numpy().reshape(-1).tofile(out / "reference.f32")
    report = write_compile_report(out, design.manifest(), design.estimate())
    est = design.estimate()
    print(f"wrote {out} ({design.kind} design, precision {args.precision}); report {report}")
    print(f"estimated {est.tokens_per_s:.1f} tokens/s on {args.part} (analytical estimate, not synthesis)")
    return 0


def _csim(args: argparse.Namespace) -> int:
    from trico.hls.design import run_csim
    from trico.hls.report import write_csim_report

    res = run_csim(args.dir, opt=args.opt)
    d = res.out_dir
    data: dict = {"compile_s": round(res.compile_s, 2), "run_s": round(res.run_s, 3)}
    ok = True
    if (d / "reference.f32").is_file():
        ref = np.fromfile(d / "reference.f32", dtype=np.float32)
        y = res.outputs["hidden"]
        data["rel_l2_vs_pytorch_fp32"] = float(np.linalg.norm(y - ref) / np.linalg.norm(ref))
    if (d / "reference_tokens.i32").is_file():
        ref = np.fromfile(d / "reference_tokens.i32", dtype=np.int32).tolist()
        got = res.outputs["tokens"].tolist()
        data.update(csim_tokens=got, pytorch_tokens=ref, tokens_identical=got == ref)
        ok = got == ref
    report = write_csim_report(d, data)
    for k, v in data.items():
        print(f"{k}: {v}")
    print(f"report {report}")
    return 0 if ok else 1


def _dse(args: argparse.Namespace) -> int:
    from trico.hls.design import trace_layer
    from trico.hls.dse import explore
    from trico.hls.parts import get_part
    from trico.hls.report import write_dse_report
    from trico.hls.workload import calibration_tokens, capture_decode_steps

    get_part(args.part)

    def split(text: str | None, cast=str):  # noqa: ANN001, ANN202
        return [cast(x) for x in text.split(",")] if text else None

    lm = _load(args.model, None)
    samples, _ = capture_decode_steps(lm.model, calibration_tokens(lm.tokenizer, 32), 0, n_steps=2)
    base = trace_layer(lm.model.model.layers[0], lm.model.config, samples, args.ctx)
    res = explore(
        base,
        lm.model.config,
        args.part,
        weights=split(args.weights),
        precisions=split(args.precisions),
        unrolls=split(args.unrolls, int),
        max_ctx=args.ctx,
        budget=args.budget,
    )
    report = write_dse_report(args.out, res)
    print(
        f"{len(res.points)} designs in {res.seconds:.2f} s, {len(res.feasible)} inside the budget, "
        f"{len(res.pareto)} on the Pareto front; report {report}"
    )
    for p in res.pareto:
        print(
            f"  {p.weights:9s} {p.precision:6s} unroll {p.unroll:4d}: {p.latency_ms:9.3f} ms "
            f"({p.tokens_per_s:.1f} tok/s est.), DSP {p.dsp}, BRAM18 {p.bram18}"
        )
    return 0
