"""Quantize SmolLM2-135M with every scheme and measure it against the float model; write docs/quality.{md,json}.

Usage:  python scripts/quality_report.py [--windows 16] [--schemes int8,kv-int8,...] [--render-only]

Each scheme: quantize (timed), save a trico checkpoint to a temporary directory to measure bytes on disk,
then perplexity / dPPL / mean KL / top-1 against the unquantized model with trico.eval.perplexity.evaluate
on wikitext2-test (512-token windows, no overlap). Calibration: wikitext2-valid only. Results are
appended to the JSON after every scheme, so an interrupted run keeps what it measured; the markdown is
rendered from the JSON (never typed by hand).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trico.engine.kv_cache_int8 import Int8KVCache  # noqa: E402
from trico.eval.data import load_eval_tokens  # noqa: E402
from trico.eval.perplexity import evaluate  # noqa: E402
from trico.io.gguf_writer import write_gguf  # noqa: E402
from trico.io.loader import load_model, read_checkpoint  # noqa: E402
from trico.io.trico_checkpoint import read_manifest, save_trico_checkpoint  # noqa: E402
from trico.models.llama import build_model  # noqa: E402
from trico.quant import parse, quantize  # noqa: E402
from trico.quant.calibration import DEFAULT_N_SEQS, DEFAULT_SEQ_LEN, load_calibration  # noqa: E402

DEFAULT_SCHEMES = [
    "int4-rtn-g128-fit",
    "int4-gptq-g128-fit",
    "int4-gptq-g128-am-fit",
    "int4-gptq-g128-act-am-fit",
    "int4-gptq-g128-act-awq-fit",
    "int4-awq-g128-fit",
    "int3-rtn-g128-fit",
    "int3-gptq-g128-fit",
    "int3-gptq-g128-act-awq-fit",
    "int3-awq-g128-fit",
    "int8",
    "int8-rtn-g32",
    "int8-gptq-pc-act-awq",
    "int8-gptq-pc-am",
    "kv-int8",
    "w8a8",
    "w8a8-smooth",
    "int4-rtn-g32-asym",
    "ternary-g128-fit",
    "ternary-pc",
    "ternary-pt",
    "int4-rtn-g64",
    "int4-gptq-g64",
    "int4-gptq-g64-act-awq",
    "int4-awq-g64",
]


CALIBRATED = ("awq", "gptq", "smoothquant")


class CachedReference(nn.Module):
    """The float model with its logits memoized per window, so each window's reference runs once."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.cache: dict[str, torch.Tensor] = {}

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of the wrapped model (computed on first sight of these tokens)."""
        key = hashlib.sha1(tokens.cpu().numpy().tobytes()).hexdigest()
        if key not in self.cache:
            self.cache[key] = self.model(tokens)
        return self.cache[key]


class WithCache(nn.Module):
    """Run a model through a KV cache (e.g. INT8) so evaluation sees the cache's rounding."""

    def __init__(self, model: nn.Module, cache_factory: type) -> None:
        super().__init__()
        self.model, self.cache_factory = model, cache_factory

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits of one window, all positions, through a fresh cache."""
        cfg = self.model.config
        cache = self.cache_factory(
            cfg, tokens.shape[0], tokens.shape[1], dtype=torch.float32, device=tokens.device
        )
        return self.model(tokens, torch.arange(tokens.shape[1], device=tokens.device), cache)


def _git_sha() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def measure_scheme(name, ckpt, calib, tokens, reference, windows: int) -> dict:  # noqa: ANN001
    """Quantize one scheme, measure size on disk, evaluate; returns a JSON row."""
    scheme = parse(name)
    model = build_model(ckpt.config, ckpt.state_dict, dtype=torch.float32)
    t0, c0 = time.perf_counter(), time.process_time()
    quantize(model, scheme, calib, progress=True)
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    info = model.trico_quant
    with tempfile.TemporaryDirectory() as tmp:
        saved = save_trico_checkpoint(model, ckpt.config, None, Path(tmp) / "ck")
        bytes_on_disk = read_manifest(saved)["bytes_on_disk"]
    linear_bytes = sum(v["bytes"] for v in info.layers.values())
    evaluated = WithCache(model, Int8KVCache) if scheme.kv_bits == 8 else model
    r = evaluate(evaluated, tokens, ctx=512, windows=windows, reference=reference, progress=True)
    groups = sorted({v["group_size"] for v in info.layers.values()})
    return {
        "scheme": scheme.name,
        "method": scheme.method,
        "weight_bits": scheme.weight_bits,
        "act_bits": scheme.act_bits,
        "kv_bits": scheme.kv_bits,
        "layer_group_sizes": groups,
        "bits_per_weight": info.weight_bits() if info.layers else 16.0,
        "quantized_linear_bytes": linear_bytes,
        "bytes_on_disk": bytes_on_disk,
        "high_precision": info.high_precision,
        "quantize_seconds": seconds,
        "quantize_cpu_seconds": cpu_seconds,
        "ppl": r.ppl,
        "ppl_ref": r.ppl_ref,
        "dppl": r.dppl,
        "kl_mean": r.kl_mean,
        "kl_p99": r.kl_p99,
        "top1": r.top1,
        "windows": r.windows,
        "calibration": info.calibration,
        "ctx": r.ctx,
        "n_tokens": r.n_tokens,
    }


def gguf_round_trip(ckpt, tokens, windows: int, scheme_name: str = "int4-rtn-g32") -> dict:  # noqa: ANN001
    """Quantize, save, reload (identical logits?), export GGUF, reload it with trico, compare PPL."""
    model = build_model(ckpt.config, ckpt.state_dict, dtype=torch.float32)
    quantize(model, scheme_name, None, progress=False)
    for p in model.parameters():  # the checkpoint stores unquantized tensors in fp16: compare like with like
        p.data.copy_(p.data.half().float())
    with tempfile.TemporaryDirectory() as tmp:
        ck = save_trico_checkpoint(model, ckpt.config, ckpt.tokenizer, Path(tmp) / "ck")
        loaded = load_model(str(ck))
        window = tokens[:512].view(1, -1)
        with torch.no_grad():
            same_logits = bool(torch.equal(loaded.model(window), model(window)))
        res = write_gguf(
            loaded.model, loaded.config, loaded.tokenizer, Path(tmp) / "m.gguf", read_manifest(ck)
        )
        from trico.io.gguf_reader import load_gguf

        g = load_gguf(Path(tmp) / "m.gguf")
        max_diff = 0.0
        for name, mod in loaded.model.named_modules():
            if hasattr(mod, "dequantize"):
                max_diff = max(
                    max_diff, float((g.state_dict[f"{name}.weight"] - mod.dequantize()).abs().max())
                )
        gguf_model = load_model(str(Path(tmp) / "m.gguf")).model
        p_trico = evaluate(loaded.model, tokens, ctx=512, windows=windows, progress=False).ppl
        p_gguf = evaluate(gguf_model, tokens, ctx=512, windows=windows, progress=False).ppl
    return {
        "scheme": scheme_name,
        "reload_identical_logits": same_logits,
        "gguf_types": res.type_counts,
        "gguf_exact_tensors": len(res.exact),
        "gguf_bytes": res.bytes_on_disk,
        "gguf_max_abs_weight_diff": max_diff,
        "ppl_trico_checkpoint": p_trico,
        "ppl_gguf": p_gguf,
        "ppl_rel_diff": abs(p_gguf - p_trico) / p_trico,
        "windows": windows,
    }


def _f(x: float | None, fmt: str) -> str:
    return "—" if x is None else format(x, fmt)


def _calib(row: dict) -> str:
    # rows measured before the per-row record existed used the 8 x 512 calibration of that time
    c = row.get("calibration", {"n_seqs": 8, "seq_len": 512} if row["method"] in CALIBRATED else None)
    return f"{c['n_seqs']} x {c['seq_len']}" if c else "—"


def render(data: dict) -> str:
    """docs/quality.md from the JSON."""
    meta = data["meta"]
    rows = data["results"]
    by = {r["scheme"]: r for r in rows}
    lines = [
        "# Quantization quality on SmolLM2-135M-Instruct",
        "",
        f"Generated by {', then '.join(f'`{c}`' for c in data.get('runs', [meta['command']]))} "
        f"(last run: commit {meta['git_sha']}, {meta['date']}, {meta['machine']}, "
        f"torch {meta['torch']}, {meta['threads']} threads). Do not edit by hand.",
        "",
        f"- **Evaluation**: wikitext2-test, the first W non-overlapping windows of {meta['ctx']} tokens (W per row: "
        "511 scored tokens each), against the unquantized model (fp32; its PPL on the same windows in the `ref PPL` "
        "column). KL is KL(P_float || P_quant) per position, averaged; top-1 is argmax agreement. Rows compared "
        "with each other (same bits and group size) always share their windows"
        + (
            "."
            if min(r["windows"] for r in rows) >= 40
            else "; rows with fewer than the 40 windows of `trico eval`'s default were measured when the CPU was "
            "shared with other jobs."
        ),
        f"- **Calibration** (AWQ, GPTQ, SmoothQuant): N x L tokens from {meta['calibration']['file']} (seed "
        f"{meta['calibration']['seed']}), N x L per row in the `calib` column; never the test file.",
        "- **Bits/weight** is over the quantized linear layers, fp16 scales and mins included; **size** is the "
        "trico checkpoint's bytes on disk (embedding table, which lm_head shares, kept in fp16 in every row).",
        "- **High precision**: the embedding table and the tied lm_head stay fp16 in every scheme here "
        "(a `-head` suffix would quantize lm_head too).",
        "- **The source model is already quantized**: the only SmolLM2 weights on this machine come from a GGUF "
        "file whose linear layers are Q4_1 (blocks of 32, scale + min). `int4-rtn-g32-asym` lands on that very "
        "grid and reproduces the weights (almost) exactly, so its row is a sanity check, not a result. Methods "
        "are compared at g64, g128 and 3 bits, where they differ.",
        "- **`-fit`**: SmolLM2's q/k/v/o/gate/up layers have in_features = 576, which 128 does not divide; "
        "`-g128-fit` uses the largest divisor of 576 not above 128 (96) on those layers and 128 on down_proj "
        "(in_features 1536). Plain `int4-rtn-g128` is refused with that explanation.",
        "- **`-act-awq`** (GPTQ): act-order GPTQ on weights first transformed by AWQ's search (per-input-channel "
        "scales folded into the op before, and per-group clipping ranges), so it is GPTQ and AWQ combined; "
        "plain GPTQ rows (`-gptq-` without `-awq`) are shown beside it.",
        "- **`-am`** (GPTQ): the Hessian of q/k/v weights each calibration token by the attention it receives "
        "(summed over the queries, averaged over heads). Unweighted, the attention sink (the first token of "
        "each sequence: a third to a half of all attention in SmolLM2's middle blocks, but 1 token in 512) hardly "
        "counts, and GPTQ compensates the other tokens' rounding error onto its key and value.",
        "- **INT8 weight-only**: every INT8 row is checked; plain round-to-nearest per output channel (`int8`) "
        "is reported as measured, and a calibrated per-channel INT8 (`int8-gptq-pc-act-awq`: the same stored "
        "format, codes chosen by GPTQ on AWQ-scaled weights) is the one meant to meet the target.",
        "",
        "| scheme | method | calib | bits/weight | size MiB | quantize s (CPU s) | W | ref PPL | PPL | ΔPPL | mean KL "
        "| top-1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| `{r['scheme']}` | {r['method']} | {_calib(r)} | {r['bits_per_weight']:.3f} | {r['bytes_on_disk'] / 2**20:.1f} | "
            f"{r['quantize_seconds']:.1f} ({r['quantize_cpu_seconds']:.1f}) | {r['windows']} | {r['ppl_ref']:.3f} | "
            f"{r['ppl']:.3f} | {r['dppl']:+.3f} | {r['kl_mean']:.5f} | "
            f"{100 * r['top1']:.2f}% |"
        )
    lines += ["", "## Acceptance checks (computed from the table)", ""]
    lines += _checks(by)
    rt = data.get("round_trip")
    if rt:
        lines += [
            "",
            "## Checkpoint and GGUF round trip",
            "",
            f"`{rt['scheme']}` saved as a trico checkpoint and reloaded: identical logits = "
            f"{rt.get('reload_identical_logits', 'not measured')} (one 512-token window; the model's fp32 embedding and norms rounded to fp16 as stored). Exported to GGUF "
            f"({', '.join(f'{n} {t}' for t, n in sorted(rt['gguf_types'].items()))}; {rt['gguf_exact_tensors']} "
            f"tensors written from trico's codes; {rt['gguf_bytes'] / 2**20:.1f} MiB): read back with the gguf "
            f"package, max |weight difference| = {rt['gguf_max_abs_weight_diff']:.3g}; trico loading the GGUF: PPL "
            f"{rt['ppl_gguf']:.4f} vs {rt['ppl_trico_checkpoint']:.4f} from the checkpoint (relative difference "
            f"{100 * rt['ppl_rel_diff']:.4f}%, {rt['windows']} windows).",
        ]
    lines.append("")
    return "\n".join(lines)


def _checks(by: dict) -> list[str]:
    out = []

    def line(ok: bool | None, text: str) -> None:
        mark = "n/a" if ok is None else ("PASS" if ok else "FAIL")
        out.append(f"- **{mark}** {text}")

    for name, r in by.items():
        if name.startswith("int8"):
            gran = "per channel" if parse(name).group_size == 0 else "per group"
            line(
                r["kl_mean"] <= 0.002 and r["top1"] >= 0.98,
                f"INT8 weight-only `{name}` ({r['method'].upper()}, {gran}): KL {r['kl_mean']:.5f} (<= 0.002), top-1 {100 * r['top1']:.2f}% (>= 98%); {r['windows']} windows",
            )
    if "kv-int8" in by:
        r = by["kv-int8"]
        line(r["kl_mean"] <= 0.002, f"KV-cache INT8 alone: KL {r['kl_mean']:.5f} (<= 0.002)")
    if "w8a8" in by and "w8a8-smooth" in by:
        a, b = by["w8a8-smooth"]["kl_mean"], by["w8a8"]["kl_mean"]
        line(a < b, f"SmoothQuant W8A8 (alpha 0.5) KL {a:.5f} < naive W8A8 (alpha 0) KL {b:.5f}")
    for bits, g in ((4, "g64"), (4, "g128-fit"), (3, "g128-fit")):
        rtn = by.get(f"int{bits}-rtn-{g}")
        if not rtn:
            continue
        d = rtn["dppl"]
        fit = "-fit" if g.endswith("-fit") else ""
        base = g.removesuffix("-fit")
        for method, suffix, factor in (
            ("gptq", "", 0.6),
            ("gptq", "-act", 0.6),
            ("gptq", "-am", 0.6),
            ("gptq", "-act-am", 0.6),
            ("gptq", "-act-awq", 0.6),
            ("awq", "", 0.75),
        ):
            name = f"int{bits}-{method}-{base}{suffix}{fit}"
            r = by.get(name)
            if r and r["windows"] == rtn["windows"]:  # ΔPPLs are compared on the same windows only
                line(
                    r["dppl"] <= factor * d,
                    f"INT{bits} {g}: `{name}` ΔPPL {r['dppl']:.3f} <= {factor} x RTN ΔPPL {d:.3f} "
                    f"({factor * d:.3f}); KL {r['kl_mean']:.4f} vs RTN {rtn['kl_mean']:.4f}",
                )
    tern = [by.get(s) for s in ("ternary-g128-fit", "ternary-pc", "ternary-pt")]
    if all(tern):
        line(
            tern[0]["kl_mean"] < tern[2]["kl_mean"],
            f"ternary per group KL {tern[0]['kl_mean']:.3f} < per tensor KL {tern[2]['kl_mean']:.3f} "
            f"(per channel {tern[1]['kl_mean']:.3f}); PPL {tern[0]['ppl']:.1f} / {tern[1]['ppl']:.1f} / {tern[2]['ppl']:.1f}",
        )
    for name, r in by.items():
        if r["method"] in ("gptq", "awq"):
            line(
                r["quantize_seconds"] < 300,
                f"`{name}` quantized in {r['quantize_seconds']:.0f} s wall, {r['quantize_cpu_seconds']:.0f} s CPU "
                "(< 300 s wall on this shared 2-core CPU)",
            )
    return out


def main() -> int:
    """Run (or re-render) the report."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=40)
    ap.add_argument("--schemes", default=",".join(DEFAULT_SCHEMES))
    ap.add_argument("--calib-n", type=int, default=DEFAULT_N_SEQS)
    ap.add_argument("--calib-len", type=int, default=DEFAULT_SEQ_LEN)
    ap.add_argument("--json", default=str(REPO / "docs" / "quality.json"))
    ap.add_argument("--md", default=str(REPO / "docs" / "quality.md"))
    ap.add_argument("--render-only", action="store_true", help="re-render the markdown from the JSON")
    ap.add_argument("--resume", action="store_true", help="keep rows already in the JSON, run the rest")
    ap.add_argument("--skip-round-trip", action="store_true")
    ap.add_argument("--round-trip-windows", type=int, default=2)
    ap.add_argument("--redo-round-trip", action="store_true", help="measure the round trip again")
    ap.add_argument(
        "--redo", default="", help="with --resume: schemes to measure again (their old rows are dropped)"
    )
    args = ap.parse_args()
    jpath, mpath = Path(args.json), Path(args.md)
    if args.render_only:
        mpath.write_text(render(json.loads(jpath.read_text())))
        return 0
    torch.manual_seed(0)
    ckpt = read_checkpoint("smollm2")
    tokens = load_eval_tokens(ckpt.tokenizer)
    calib = load_calibration(ckpt.tokenizer, n_seqs=args.calib_n, seq_len=args.calib_len)
    reference = CachedReference(build_model(ckpt.config, ckpt.state_dict, dtype=torch.float32))
    data = json.loads(jpath.read_text()) if args.resume and jpath.is_file() else {"results": []}
    redo = {parse(n).name for n in filter(None, args.redo.split(","))}
    data["results"] = [r for r in data["results"] if r["scheme"] not in redo]
    done = {r["scheme"] for r in data["results"]}
    if "runs" not in data and "meta" in data:
        data["runs"] = [data["meta"]["command"]]  # a resumed report keeps the earlier command on record
    data.setdefault("runs", []).append(" ".join(["python scripts/quality_report.py", *sys.argv[1:]]))
    data["meta"] = {
        "command": " ".join(["python scripts/quality_report.py", *sys.argv[1:]]),
        "git_sha": _git_sha(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} torch threads (shared with other jobs)",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "windows": args.windows,
        "ctx": 512,
        "calibration": calib.settings,
    }
    jpath.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if not args.skip_round_trip and ("round_trip" not in data or args.redo_round_trip):
            data["round_trip"] = gguf_round_trip(ckpt, tokens, windows=args.round_trip_windows)
            print(json.dumps(data["round_trip"]), flush=True)
            jpath.write_text(json.dumps(data, indent=1))
        for name in filter(None, args.schemes.split(",")):
            if parse(name).name in done:
                continue
            print(f"== {name}", flush=True)
            row = measure_scheme(name, ckpt, calib, tokens, reference, args.windows)
            data["results"].append(row)
            print(json.dumps(row), flush=True)
            jpath.write_text(json.dumps(data, indent=1))
            mpath.write_text(render(data))
    jpath.write_text(json.dumps(data, indent=1))
    mpath.write_text(render(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
