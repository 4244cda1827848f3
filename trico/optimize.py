"""`trico optimize`: the main job tying compression, quality measurement and the performance model together.

For each candidate scheme: quantize the float model, measure KL / top-1 / perplexity against it on
WikiText-2 test windows, predict TTFT / TPOT / $ / J on the target device with the (calibrated) perf
model, and on a GPU also time the decode. The best scheme within the KL budget (lowest predicted
$/M tokens, or TPOT when the device has no price) is written as a trico checkpoint together with
report.md, report.json and the plots, into one folder that `trico generate --model OUT` loads.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from trico.errors import TricoError

DEFAULT_CANDIDATES: tuple[str, ...] = (
    "int8",
    "int4-rtn-g32-asym",
    "int4-rtn-g128-fit",
    "int3-rtn-g128-fit",
)
"""Tried when --schemes is not given (weight-only RTN: no calibration pass, so the CPU job stays short)."""


@dataclass(frozen=True)
class OptimizeOptions:
    """Inputs of one optimize run."""

    model: str = "smollm2"
    target: str = "h100-sxm"
    max_kl: float = 0.05
    """Quality budget: mean KL(P_float || P_quant) per token, nats (> 0)."""
    schemes: tuple[str, ...] | None = None
    out: Path = Path("out/optimize")
    windows: int = 8
    """Evaluation windows (WikiText-2 test) per scheme (>= 1)."""
    ctx: int = 512
    """Tokens per evaluation window (>= 16)."""
    batch: int = 1
    prompt: int = 512
    new_tokens: int = 256
    plan_model: str | None = None
    """A larger preset to predict with the same schemes (the quality of the small model does not transfer)."""
    measure: bool = True
    """Time decode on a GPU when one is present."""
    tie_tolerance: float = 0.02
    """Schemes whose predicted objective is within this fraction of the best count as tied; the tie goes to
    the lowest measured KL (>= 0)."""
    overwrite: bool = False
    """Replace `out` if it holds an earlier optimize result (report.json); anything else is never replaced."""
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.tie_tolerance >= 0:
            raise TricoError(f"--tie-tolerance must be >= 0, got {self.tie_tolerance}")
        if not self.max_kl > 0:
            raise TricoError(f"--max-kl must be > 0, got {self.max_kl}")
        if self.windows < 1 or self.ctx < 16:
            raise TricoError(f"need >= 1 window of >= 16 tokens, got {self.windows} x {self.ctx}")
        for name in ("batch", "prompt", "new_tokens"):
            if getattr(self, name) < 1:
                raise TricoError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")


class CachedReference:
    """The float model's logits per evaluation window, computed once and reused for every scheme."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model
        self._cache: dict[bytes, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of `tokens` (fp32), from cache when the same window was seen."""
        key = tokens.cpu().numpy().tobytes()
        if key not in self._cache:
            # Half precision halves the cache; the KL it feeds is computed in fp32 from these logits.
            self._cache[key] = self.model(tokens).to(torch.float16)
        return self._cache[key].float()


def _check_out(out: Path, overwrite: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if overwrite and out.is_dir() and (out / "report.json").is_file():
        return
    hint = "" if overwrite else " (or --overwrite to replace an earlier optimize result)"
    raise TricoError(f"{out}: output folder exists and is not empty; choose a new --out{hint}")


def _log(opts: OptimizeOptions, msg: str) -> None:
    if opts.progress:
        print(msg, flush=True)


def _measure_decode(model: torch.nn.Module, opts: OptimizeOptions) -> dict | None:
    """On a GPU: decode tokens/s and ms per step of the quantized model (None on CPU)."""
    if not (opts.measure and torch.cuda.is_available()):
        return None
    import copy

    from trico.engine.benchmark import bench_decode

    device = torch.device("cuda")
    # A copy: the CPU model stays as evaluated (fp32) for the checkpoint that may be written from it.
    gpu_model = copy.deepcopy(model).to(device=device, dtype=torch.bfloat16)
    try:
        r = bench_decode(gpu_model, opts.batch, opts.prompt, opts.new_tokens, opts.prompt, "graph", 3, device)
    finally:
        del gpu_model
        torch.cuda.empty_cache()
    return {"ms_per_token": r["ms_per_token"], "tok_s": r["tok_s"], "gpu": torch.cuda.get_device_name(device)}


def run_optimize(opts: OptimizeOptions, log: Callable[[str], None] | None = None) -> dict:
    """Run the whole job; returns the report dict (also written as OUT/report.json)."""
    t_start = time.perf_counter()
    out = Path(opts.out)
    _check_out(out, opts.overwrite)
    from trico.config import get_config
    from trico.eval.data import load_eval_tokens
    from trico.eval.perplexity import evaluate
    from trico.io.loader import read_checkpoint
    from trico.models.llama import build_model
    from trico.perf import dse, plots
    from trico.perf.hardware import get_hardware
    from trico.perf.model import estimate
    from trico.perf.workload import Workload
    from trico.quant import parse, quantize
    from trico.quant.api import METHODS, NEEDS_CALIBRATION

    hw = get_hardware(opts.target)
    eff = dse.efficiency_for(hw)
    names = list(opts.schemes or DEFAULT_CANDIDATES)
    schemes = [parse(n) for n in names]
    skipped = [s.name for s in schemes if s.method not in METHODS]
    schemes = [s for s in schemes if s.method in METHODS]
    if not schemes:
        raise TricoError(
            f"no candidate scheme has a registered quantization method (skipped: {', '.join(skipped)})"
        )

    _log(opts, f"loading {opts.model} ...")
    ckpt = read_checkpoint(opts.model)
    if ckpt.tokenizer is None:
        raise TricoError(f"{opts.model}: no tokenizer, cannot evaluate on text")
    config = ckpt.config
    reference = build_model(config, ckpt.state_dict, dtype=torch.float32)
    tokens = load_eval_tokens(ckpt.tokenizer)
    cached_ref = CachedReference(reference)
    calib = None
    if any(s.method in NEEDS_CALIBRATION for s in schemes):
        from trico.quant.calibration import load_calibration

        # 8, not the default 32: the sweep calibrates once per candidate scheme and runs inside `make demo`.
        calib = load_calibration(ckpt.tokenizer, n_seqs=8, seq_len=opts.ctx)

    workload = Workload(batch=opts.batch, prompt=opts.prompt, new_tokens=opts.new_tokens)
    base_est = estimate(config, "bf16", workload, hw, eff)
    price_known = hw.price_per_hour_usd is not None
    objective = "usd_per_Mtok" if price_known else "tpot_ms"

    rows: list[dict] = []
    points: list[dse.Point] = []
    best: tuple[float, dict, torch.nn.Module] | None = None
    for scheme in schemes:
        t0 = time.perf_counter()
        _log(opts, f"[{scheme.name}] quantizing ...")
        model = build_model(config, ckpt.state_dict, dtype=torch.float32)
        quantize(model, scheme, calib, progress=False)
        q_s = time.perf_counter() - t0
        _log(opts, f"[{scheme.name}] evaluating {opts.windows} x {opts.ctx} tokens ...")
        res = evaluate(
            model, tokens, ctx=opts.ctx, windows=opts.windows, reference=cached_ref, progress=opts.progress
        )
        est = estimate(config, scheme, workload, hw, eff)
        measured = _measure_decode(model, opts)
        row = {
            "scheme": scheme.name,
            "bits_per_weight": model.trico_quant.weight_bits(),
            "kl_mean": res.kl_mean,
            "kl_p99": res.kl_p99,
            "top1": res.top1,
            "ppl": res.ppl,
            "ppl_ref": res.ppl_ref,
            "dppl": res.dppl,
            "within_budget": bool(res.kl_mean is not None and res.kl_mean <= opts.max_kl),
            "pred_ttft_ms": est.ttft_s * 1e3,
            "pred_tpot_ms": est.tpot_s * 1e3,
            "pred_decode_tok_s": est.decode_tok_s,
            "pred_speedup_tpot": base_est.tpot_s / est.tpot_s,
            "pred_weights_GB": est.memory.weights_GB,
            "usd_per_Mtok": est.usd_per_Mtok,
            "J_per_token": est.J_per_token,
            "decode_bound": est.decode.bound,
            "measured": measured,
            "quantize_s": q_s,
            "eval_s": time.perf_counter() - t0 - q_s,
        }
        row["tpot_ms"] = row["pred_tpot_ms"]
        rows.append(row)
        points.append(
            dse.Point(
                est,
                () if row["within_budget"] else (f"KL {res.kl_mean:.4f} > {opts.max_kl:g}",),
                False,
                {"tpot": est.tpot_s * 1e3, "kl": res.kl_mean},
            )
        )
        _log(
            opts,
            f"[{scheme.name}] KL {res.kl_mean:.4f}  top-1 {res.top1:.3f}  PPL {res.ppl:.2f} (float {res.ppl_ref:.2f})  "
            f"predicted TPOT {est.tpot_s * 1e3:.3f} ms on {hw.name}",
        )
        if row["within_budget"]:
            score = row[objective] if row[objective] is not None else row["pred_tpot_ms"]
            if best is None or score < best[0]:
                best = (score, row, model)
                continue
        del model

    if best is None:
        closest = min(rows, key=lambda r: r["kl_mean"])
        raise TricoError(
            f"no candidate meets --max-kl {opts.max_kl:g}: the closest is {closest['scheme']} with KL "
            f"{closest['kl_mean']:.4f}; raise the budget or add higher-precision schemes"
        )
    best_score, chosen, chosen_model = best
    # Predictions that differ by less than the tie tolerance are not a reason to give up quality: among those,
    # take the lowest measured KL (re-quantizing it; every method is deterministic for a fixed calibration set).
    tied = [
        r
        for r in rows
        if r["within_budget"]
        and (r[objective] if r[objective] is not None else r["pred_tpot_ms"])
        <= best_score * (1 + opts.tie_tolerance)
    ]
    preferred = min(tied, key=lambda r: r["kl_mean"])
    if preferred["scheme"] != chosen["scheme"]:
        _log(
            opts,
            f"{preferred['scheme']} is within {opts.tie_tolerance:.0%} of {chosen['scheme']} with lower KL; re-quantizing it",
        )
        del chosen_model
        chosen = preferred
        chosen_model = build_model(config, ckpt.state_dict, dtype=torch.float32)
        quantize(chosen_model, parse(chosen["scheme"]), calib, progress=False)
    points = dse.mark_pareto(points, [dse.OBJECTIVES["tpot"], dse.OBJECTIVES["kl"]])

    plan_rows = []
    if opts.plan_model:
        big = get_config(opts.plan_model)
        for s in ["bf16", *[s.name for s in schemes]]:
            e = estimate(big, s, workload, hw, eff)
            plan_rows.append(e.row())

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        from trico.io.trico_checkpoint import save_trico_checkpoint

        ckpt_dir = staging / "ckpt"
        save_trico_checkpoint(chosen_model, config, ckpt.tokenizer, ckpt_dir, source=str(ckpt.source))
        for f in ckpt_dir.iterdir():
            f.rename(staging / f.name)
        ckpt_dir.rmdir()
        chosen_est = estimate(config, chosen["scheme"], workload, hw, eff)
        plots.pareto_chart(
            points,
            "tpot",
            "kl",
            staging / "pareto.png",
            title=f"{opts.model} on {hw.name}: predicted TPOT vs measured KL (budget {opts.max_kl:g})",
            y_limit=opts.max_kl,
        )
        plots.roofline_chart(
            hw,
            [base_est, *[p.estimate for p in points]],
            staging / "roofline.png",
            per_operator=False,
            title=f"Roofline on {hw.display_name}: {opts.model}, batch {opts.batch}, prompt {opts.prompt}",
        )
        plots.roofline_chart(hw, [chosen_est], staging / "roofline-operators.png", per_operator=True)
        report = {
            "model": opts.model,
            "config": config.name,
            "target": hw.name,
            "max_kl": opts.max_kl,
            "objective": objective,
            "tie_tolerance": opts.tie_tolerance,
            "chosen": chosen["scheme"],
            "workload": dataclasses.asdict(workload),
            "eval": {"text": "wikitext2-test.txt", "windows": opts.windows, "ctx": opts.ctx},
            "perf_model": eff.source,
            "baseline_bf16": {
                "pred_ttft_ms": base_est.ttft_s * 1e3,
                "pred_tpot_ms": base_est.tpot_s * 1e3,
                "usd_per_Mtok": base_est.usd_per_Mtok,
                "J_per_token": base_est.J_per_token,
                "weights_GB": base_est.memory.weights_GB,
            },
            "candidates": rows,
            "pareto": [p.estimate.scheme for p in points if p.pareto],
            "skipped_schemes": skipped,
            "plan_model": {"name": opts.plan_model, "rows": plan_rows} if opts.plan_model else None,
            "wall_s": time.perf_counter() - t_start,
        }
        from trico.perf.tables import write_json

        write_json(report, staging / "report.json")
        (staging / "report.md").write_text(render_report(report, hw))
        if out.exists():
            # --overwrite of an earlier result (checked above): swap it out only once the new one is complete.
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            shutil.rmtree(old, ignore_errors=True)
        staging.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _log(
        opts,
        f"chose {chosen['scheme']} (KL {chosen['kl_mean']:.4f} <= {opts.max_kl:g}); wrote {out}/ "
        f"(checkpoint, report.md, report.json, plots) in {report['wall_s']:.0f} s",
    )
    return report


def render_report(report: dict, hw) -> str:  # noqa: ANN001 - trico.perf.hardware.Hardware
    """report.md: the decision, the candidate table, the plots and where every number came from."""
    from trico.perf.tables import markdown_table

    cols = [
        ("scheme", "scheme"),
        ("bits_per_weight", "bits/weight"),
        ("kl_mean", "KL (nats/tok)"),
        ("top1", "top-1"),
        ("ppl", "PPL"),
        ("within_budget", "within budget"),
        ("pred_tpot_ms", "pred. TPOT ms"),
        ("pred_ttft_ms", "pred. TTFT ms"),
        ("pred_speedup_tpot", "pred. speed-up vs bf16"),
        ("usd_per_Mtok", "$/M tok"),
        ("J_per_token", "J/tok"),
        ("decode_bound", "decode bound"),
    ]
    base = report["baseline_bf16"]
    w = report["workload"]
    lines = [
        f"# trico optimize: {report['model']} ({report['config']}) on {hw.display_name}",
        "",
        f"**Chosen: `{report['chosen']}`** — the lowest predicted "
        f"{'$ per million tokens' if report['objective'] == 'usd_per_Mtok' else 'time per output token'} "
        f"among the schemes whose measured KL divergence to the unquantized model is at most {report['max_kl']:g} "
        f"nats/token (predictions within {report['tie_tolerance']:.0%} of the best count as a tie, won by the lower "
        "KL). This folder is its trico checkpoint: `trico generate --model <this folder>` runs it.",
        "",
        f"Quality: measured on CPU over {report['eval']['windows']} windows of {report['eval']['ctx']} tokens of "
        f"WikiText-2 test against the unquantized model (float PPL {report['candidates'][0]['ppl_ref']:.2f}). "
        f"Speed and cost: predicted for batch {w['batch']}, prompt {w['prompt']}, {w['new_tokens']} new tokens "
        f"by the performance model ({report['perf_model']}).",
        "",
        markdown_table(report["candidates"], cols),
        "",
        f"Unquantized bf16 baseline (predicted): TTFT {base['pred_ttft_ms']:.3f} ms, TPOT "
        f"{base['pred_tpot_ms']:.3f} ms, weights {base['weights_GB']:.3f} GB.",
        "",
    ]
    measured = [r for r in report["candidates"] if r.get("measured")]
    if measured:
        lines += [
            "## Measured on the GPU",
            "",
            markdown_table(
                [{"scheme": r["scheme"], **r["measured"], "pred": r["pred_tpot_ms"]} for r in measured],
                [
                    ("scheme", "scheme"),
                    ("gpu", "GPU"),
                    ("ms_per_token", "measured ms/step"),
                    ("pred", "predicted ms"),
                    ("tok_s", "tok/s"),
                ],
            ),
            "",
        ]
    if report.get("plan_model"):
        lines += [
            f"## The same schemes on {report['plan_model']['name']} (prediction only)",
            "",
            "Quality above was measured on the small model and does not transfer; this shows what each format "
            "does to speed and cost on a larger shape.",
            "",
            markdown_table(
                report["plan_model"]["rows"],
                [
                    ("scheme", "scheme"),
                    ("ttft_ms", "TTFT ms"),
                    ("tpot_ms", "TPOT ms"),
                    ("memory_GB", "mem GB"),
                    ("usd_per_Mtok", "$/M tok"),
                    ("decode_bound", "decode bound"),
                ],
            ),
            "",
        ]
    lines += [
        "## Plots",
        "",
        "![Pareto front: predicted TPOT vs measured KL](pareto.png)",
        "",
        "![Roofline: each candidate's prefill and decode step](roofline.png)",
        "",
        "![Roofline: the chosen scheme's operators](roofline-operators.png)",
        "",
    ]
    if report["skipped_schemes"]:
        lines.append(f"Skipped (no quantization method registered): {', '.join(report['skipped_schemes'])}.")
    lines.append(f"Wall time of this run: {report['wall_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def candidate_names(names: Sequence[str] | None) -> list[str]:
    """The candidate list a run would try."""
    return list(names or DEFAULT_CANDIDATES)
