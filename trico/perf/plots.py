"""Charts of the model's answers: a roofline with operators/configurations on it, the Pareto front, what-ifs.

Every chart has labelled axes with units and a legend, and is written as PNG (matplotlib, Agg backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trico.perf.dse import OBJECTIVES, Point, WhatIf
from trico.perf.hardware import Hardware
from trico.perf.model import Estimate


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_KIND_COLORS = {
    "linear": "tab:blue",
    "attention": "tab:red",
    "norm": "tab:green",
    "elementwise": "tab:olive",
    "embedding": "tab:purple",
    "allreduce": "tab:gray",
}


def _save(fig, path: str | Path) -> Path:  # noqa: ANN001 - matplotlib Figure
    """Lay out, write (creating the folder) and close a figure; returns the path."""
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    _plt().close(fig)
    return path


def roofline_chart(
    hw: Hardware,
    estimates: Sequence[Estimate],
    path: str | Path,
    per_operator: bool = True,
    title: str | None = None,
) -> Path:
    """Roofline of `hw` (memory slope + bf16 and int8 ceilings) with each operator or configuration on it.

    Points are placed at their arithmetic intensity (FLOP/byte) and modelled achieved rate (TFLOP/s).
    With `per_operator`, each operator of the first estimate's prefill (circles) and decode step (triangles)
    is drawn, coloured by kind; otherwise each estimate's whole prefill and decode step is one point.
    """
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(8.5, 5.5), dpi=120)
    bw = hw.memory_bandwidth_GBps * 1e9
    xs = np.logspace(-1, 5, 200)
    drawn: set[float] = set()
    for prec, style in (("bf16", "-"), ("int8", "--"), ("fp8", ":")):
        if prec not in hw.peak_TFLOPs or hw.peak_TFLOPs[prec] in drawn:
            continue  # a precision with the same peak as one drawn would hide under it
        drawn.add(hw.peak_TFLOPs[prec])
        peak = hw.peak_TFLOPs[prec] * 1e12
        ax.plot(
            xs,
            np.minimum(xs * bw, peak) / 1e12,
            style,
            color="black",
            lw=1.2,
            label=f"{hw.name} roofline ({prec})",
        )
    ax.axvline(
        hw.ridge_flop_per_byte,
        color="gray",
        lw=0.6,
        ls="-.",
        label=f"bf16 ridge {hw.ridge_flop_per_byte:.0f} FLOP/B",
    )

    def place(flops: float, nbytes: float, seconds: float) -> tuple[float, float] | None:
        if flops <= 0 or nbytes <= 0 or seconds <= 0:
            return None
        return flops / nbytes, flops / seconds / 1e12

    if per_operator and estimates:
        est = estimates[0]
        seen: set[str] = set()
        labelled: list[tuple[float, float]] = []
        for phase, marker in (("prefill", "o"), ("decode", "^")):
            phase_est = est.prefill if phase == "prefill" else est.decode
            for t in phase_est.ops:
                xy = place(t.op.flops * t.op.count, t.op.bytes * t.op.count, t.seconds)
                if xy is None:
                    continue
                label = f"{t.op.kind} ({phase})"
                ax.scatter(
                    *xy,
                    marker=marker,
                    s=40,
                    color=_KIND_COLORS.get(t.op.kind, "black"),
                    edgecolor="black",
                    lw=0.4,
                    label=None if label in seen else label,
                    zorder=3,
                )
                seen.add(label)
                near = any(abs(xy[0] / a - 1) < 0.3 and abs(xy[1] / b - 1) < 0.3 for a, b in labelled)
                if t.op.kind in ("linear", "attention") and not near:
                    ax.annotate(t.op.name, xy, textcoords="offset points", xytext=(4, 3), fontsize=6)
                    labelled.append(xy)
        subtitle = f"{est.model}, {est.scheme}, batch {est.workload.batch}, prompt {est.workload.prompt}"
    else:
        cmap = plt.get_cmap("tab10")
        one_model = len({e.model for e in estimates}) == 1
        for i, est in enumerate(estimates):
            color = cmap(i % 10)
            name = ("" if one_model else f"{est.model} ") + f"{est.scheme} b{est.workload.batch}"
            for phase_est, marker, phase in ((est.prefill, "o", "prefill"), (est.decode, "^", "decode")):
                xy = place(phase_est.flops, phase_est.bytes, phase_est.seconds)
                if xy is not None:
                    ax.scatter(
                        *xy,
                        marker=marker,
                        s=45,
                        color=color,
                        edgecolor="black",
                        lw=0.4,
                        zorder=3,
                        label=f"{name} ({phase})",
                    )
        subtitle = f"{len(estimates)} configurations; circles = prefill, triangles = decode step"
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOP / byte of device memory traffic)")
    ax.set_ylabel("modelled achieved throughput (TFLOP/s)")
    ax.set_title(title or f"Roofline on {hw.display_name}\n{subtitle}", fontsize=10)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="lower right", ncol=1 if per_operator else 2)
    return _save(fig, path)


def pareto_chart(
    points: Sequence[Point],
    x: str,
    y: str,
    path: str | Path,
    title: str | None = None,
    y_limit: float | None = None,
) -> Path:
    """Scatter of two objectives: eligible points by scheme, excluded ones greyed, the front joined.

    `y_limit` draws a constraint on the y objective (e.g. the KL budget) as a dashed line.
    """
    plt = _plt()
    ox, oy = OBJECTIVES[x], OBJECTIVES[y]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    cmap = plt.get_cmap("tab10")
    schemes = list(dict.fromkeys(p.estimate.scheme for p in points))
    excluded = [
        p
        for p in points
        if not p.eligible and p.objectives.get(x) is not None and p.objectives.get(y) is not None
    ]
    if excluded:
        ax.scatter(
            [p.objectives[x] for p in excluded],
            [p.objectives[y] for p in excluded],
            marker="x",
            color="lightgray",
            label="excluded (does not fit / violates a limit)",
        )
    for i, scheme in enumerate(schemes):
        pts = [p for p in points if p.eligible and p.estimate.scheme == scheme]
        if pts:
            ax.scatter(
                [p.objectives[x] for p in pts],
                [p.objectives[y] for p in pts],
                color=cmap(i % 10),
                s=30,
                label=scheme,
                zorder=3,
            )
    front = sorted((p for p in points if p.pareto), key=lambda p: p.objectives[x])
    if front:
        ax.plot(
            [p.objectives[x] for p in front],
            [p.objectives[y] for p in front],
            "-",
            color="black",
            lw=1.2,
            zorder=2,
            label="Pareto front",
        )
        ax.scatter(
            [p.objectives[x] for p in front],
            [p.objectives[y] for p in front],
            facecolor="none",
            edgecolor="black",
            s=90,
            zorder=4,
        )
    if y_limit is not None:
        ax.axhline(y_limit, color="tab:red", ls="--", lw=1, label=f"limit on {oy.name}: {y_limit:g}")
    arrow = {True: "lower is better", False: "higher is better"}
    ax.set_xlabel(f"{ox.label} ({arrow[ox.minimize]})")
    ax.set_ylabel(f"{oy.label} ({arrow[oy.minimize]})")
    values_x = [p.objectives[x] for p in points if p.objectives.get(x)]
    if values_x and max(values_x) / max(min(values_x), 1e-12) > 50:
        ax.set_xscale("log")
    ax.set_title(title or f"Pareto front: {ox.name} vs {oy.name}", fontsize=10)
    ax.grid(True, lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def what_if_chart(steps: Sequence[WhatIf], knob: str, path: str | Path) -> Path:
    """TTFT and TPOT against a scaled hardware figure, with each phase's bottleneck written at each point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    f = [s.factor for s in steps]
    ax.plot(f, [s.estimate.tpot_s * 1e3 for s in steps], "o-", label="time per output token (ms)")
    ax.plot(f, [s.estimate.ttft_s * 1e3 for s in steps], "s-", label="time to first token (ms)")
    for s in steps:
        ax.annotate(
            s.estimate.decode.bound,
            (s.factor, s.estimate.tpot_s * 1e3),
            fontsize=7,
            xytext=(3, -10),
            textcoords="offset points",
        )
        ax.annotate(
            s.estimate.prefill.bound,
            (s.factor, s.estimate.ttft_s * 1e3),
            fontsize=7,
            xytext=(3, 4),
            textcoords="offset points",
        )
    names = {
        "bw": "memory bandwidth",
        "flops": "peak FLOP/s",
        "ic": "interconnect bandwidth",
        "mem": "memory capacity",
    }
    base = steps[0].hardware.name.split(":", 1)[0] if steps else ""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(f"{names.get(knob, knob)} of {base} (multiple of the datasheet figure)")
    ax.set_ylabel("latency (ms)")
    est = steps[0].estimate if steps else None
    if est is not None:
        ax.set_title(
            f"What-if: {est.model}, {est.scheme}, batch {est.workload.batch} (labels: bottleneck)",
            fontsize=10,
        )
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=8)
    return _save(fig, path)


def prediction_chart(rows: Sequence[dict], path: str | Path, title: str = "") -> Path:
    """Predicted vs measured time (log-log) for calibrated and roofline predictions, with the y = x line.

    `rows` carry measured_ms, calibrated_ms, roofline_ms and phase ('decode' or 'prefill').
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 6), dpi=120)
    styles = {
        ("decode", "calibrated_ms"): ("o", "tab:blue", "calibrated, decode (TPOT)"),
        ("prefill", "calibrated_ms"): ("s", "tab:blue", "calibrated, prefill (TTFT)"),
        ("decode", "roofline_ms"): ("o", "tab:gray", "datasheet roofline, decode (TPOT)"),
        ("prefill", "roofline_ms"): ("s", "tab:gray", "datasheet roofline, prefill (TTFT)"),
    }
    for (phase, key), (marker, color, label) in styles.items():
        sel = [r for r in rows if r["phase"] == phase]
        if sel:
            ax.scatter(
                [r["measured_ms"] for r in sel],
                [r[key] for r in sel],
                marker=marker,
                s=28,
                facecolor=color if key == "calibrated_ms" else "none",
                edgecolor=color,
                label=label,
                zorder=3,
            )
    values = [r[k] for r in rows for k in ("measured_ms", "calibrated_ms", "roofline_ms")]
    lo, hi = min(values) * 0.8, max(values) * 1.25
    ax.plot([lo, hi], [lo, hi], "-", color="black", lw=1, label="prediction = measurement")
    ax.fill_between(
        [lo, hi],
        [lo * 0.9, hi * 0.9],
        [lo * 1.1, hi * 1.1],
        color="tab:green",
        alpha=0.12,
        label="within 10%",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured time (ms): decode step or prefill")
    ax.set_ylabel("predicted time (ms)")
    ax.set_title(title or "Performance model on held-out configurations", fontsize=10)
    ax.grid(True, which="both", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="upper left")
    return _save(fig, path)
