"""Reports of compile, csim and DSE runs: markdown + JSON side by side (and the Pareto plot)."""

from __future__ import annotations

import json
from pathlib import Path

from trico.hls.dse import DseResult
from trico.hls.estimator import Estimate


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def estimate_markdown(est: Estimate) -> list[str]:
    """Per-stage cycles and resources, totals and predicted tokens/s."""
    rows = [
        [s.name, s.op, s.trip, s.ii, s.cycles, s.ext_bytes, s.dsp, s.lut, s.ff, s.bram18] for s in est.stages
    ]
    lines = [f"## Estimate on {est.part} at {est.clock_mhz:g} MHz (predicted, not synthesized)", ""]
    lines += _table(rows, ["stage", "op", "trip", "II", "cycles", "ext bytes", "DSP", "LUT", "FF", "BRAM18"])
    r, u = est.resources, est.utilization
    lines += [
        "",
        f"- layer: {est.layer_cycles} cycles ({est.layer_bound}-bound); {est.n_layers} layers + head "
        f"{est.head_cycles} cycles = {est.token_cycles} cycles per token",
        f"- **estimated {est.tokens_per_s:.1f} tokens/s** ({est.latency_ms:.3f} ms per decode step)",
        f"- resources: DSP {r['dsp']} ({u['dsp']:.1%}), LUT {r['lut']} ({u['lut']:.1%}), FF {r['ff']} "
        f"({u['ff']:.1%}), BRAM18 {r['bram18']} ({u['bram18']:.1%}); fits the budget: {est.fits}",
        *[f"- note: {n}" for n in est.notes],
    ]
    return lines


def write_compile_report(out_dir: Path, manifest: dict, est: Estimate) -> Path:
    """report.md + report.json next to the emitted design."""
    prec = manifest.get("precision", {})
    lines = [
        f"# trico hls compile: {manifest['model']} ({manifest['kind']} design) for {manifest['part']}",
        "",
        f"- options: {manifest['options']}",
        f"- passes: {', '.join(manifest['passes'])}",
        f"- precision: {prec.get('mode')}",
        "",
    ]
    rows = [
        [s["name"], s["op"], ", ".join(s["inputs"]), s["type"], s["weights"] or ""]
        for s in manifest["stages"]
    ]
    lines += _table(rows, ["stage", "op", "inputs", "output type", "weights"])
    lines += ["", *estimate_markdown(est)]
    (out_dir / "report.md").write_text("\n".join(lines) + "\n")
    (out_dir / "report.json").write_text(
        json.dumps({"design": manifest, "estimate": est.to_dict()}, indent=2)
    )
    return out_dir / "report.md"


def write_csim_report(out_dir: Path, data: dict) -> Path:
    """csim.md + csim.json: what ran, how long, and the comparison when a reference was given."""
    lines = [f"# trico hls csim: {out_dir}", ""] + [f"- {k}: {v}" for k, v in data.items()]
    (out_dir / "csim.md").write_text("\n".join(lines) + "\n")
    (out_dir / "csim.json").write_text(json.dumps(data, indent=2))
    return out_dir / "csim.md"


def ternary_vs_int8(res: DseResult) -> list[list[str]]:
    """DSP of the ternary design beside the INT8 one at the same precision and unroll."""
    by = {(p.weights, p.precision, p.unroll): p for p in res.points}
    rows = []
    for (w, prec, u), p in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        if w == "int8" and ("ternary", prec, u) in by:
            t = by[("ternary", prec, u)]
            rows.append(
                [
                    prec,
                    u,
                    p.dsp,
                    t.dsp,
                    p.layer_dsp,
                    t.layer_dsp,
                    f"{p.latency_ms:.3f}",
                    f"{t.latency_ms:.3f}",
                ]
            )
    return rows


TERNARY_HEADER = [
    "precision",
    "unroll",
    "INT8 DSP",
    "ternary DSP",
    "INT8 layer DSP",
    "ternary layer DSP",
    "INT8 ms",
    "ternary ms",
]


def write_dse_report(out_dir: Path, res: DseResult) -> Path:
    """dse.md + dse.json + dse_pareto.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plot = plot_pareto(res, out_dir / "dse_pareto.png")
    head = ["weights", "precision", "unroll", "latency ms", "tokens/s", "DSP", "LUT", "FF", "BRAM18", "bound"]

    def row(p) -> list:  # noqa: ANN001
        return [
            p.weights,
            p.precision,
            p.unroll,
            f"{p.latency_ms:.3f}",
            f"{p.tokens_per_s:.1f}",
            p.dsp,
            p.lut,
            p.ff,
            p.bram18,
            p.bound,
        ]

    b = res.budget
    lines = [
        f"# trico hls dse: {res.model} on {res.part}",
        "",
        f"{len(res.points)} designs explored in {res.seconds:.2f} s; {len(res.feasible)} fit the budget "
        f"(DSP <= {b['dsp']:.0f}, LUT <= {b['lut']:.0f}, FF <= {b['ff']:.0f}, BRAM18 <= {b['bram18']:.0f}).",
        "All numbers are estimates from trico's analytical model, not synthesis results.",
        "",
        "## Pareto front (latency vs DSP vs BRAM, designs inside the budget)",
        "",
        *_table([row(p) for p in res.pareto], head),
        "",
        f"![Pareto front]({plot.name})",
        "",
        "## Ternary vs INT8 weights (estimated DSP)",
        "",
        "Totals include the output head (int8 for both); the 'layer' columns count the decoder-layer stages only.",
        "",
        *_table(ternary_vs_int8(res), TERNARY_HEADER),
        "",
        "## Every design",
        "",
        *_table([[*row(p), "yes" if p.fits else "no"] for p in res.points], [*head, "fits"]),
        "",
        *[f"- note: {n}" for n in res.notes],
    ]
    (out_dir / "dse.md").write_text("\n".join(lines) + "\n")
    (out_dir / "dse.json").write_text(json.dumps(res.to_dict(), indent=2))
    return out_dir / "dse.md"


def plot_pareto(res: DseResult, path: Path) -> Path:
    """Latency vs DSP and vs BRAM: every feasible design, the Pareto front highlighted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    feas, front = res.feasible, res.pareto
    for ax, key, label in ((axes[0], "dsp", "DSP slices"), (axes[1], "bram18", "BRAM18")):
        for w in sorted({p.weights for p in feas}):
            pts = [p for p in feas if p.weights == w]
            ax.scatter([getattr(p, key) for p in pts], [p.latency_ms for p in pts], s=14, alpha=0.6, label=w)
        ax.scatter(
            [getattr(p, key) for p in front],
            [p.latency_ms for p in front],
            s=60,
            facecolors="none",
            edgecolors="k",
            label="Pareto",
        )
        ax.set_xlabel(f"{label} (estimated)")
        ax.set_ylabel("decode-step latency, ms (estimated)")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{res.model} on {res.part}: design-space exploration (estimates)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
