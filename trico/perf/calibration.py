"""Fit the Efficiency factors of the model to trico's own GPU benchmark results (benchmarks/results/*.json).

Nothing measured is typed into the model: the fit reads result files (schema in BENCH.md: one object per
configuration with model, scheme, batch, prompt, new_tokens, ms_per_token, plus ttft_ms and context) and
minimises the squared log error of predicted vs measured TPOT and TTFT with a small Levenberg-Marquardt
loop over log-parameters.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trico.config import ModelConfig, get_config
from trico.errors import TricoError
from trico.perf.efficiency import Efficiency
from trico.perf.hardware import Hardware, hardware_for_device_name
from trico.perf.model import decode_phase, prefill_phase
from trico.perf.scheme import SchemeLike, kernel_format, resolve_scheme
from trico.perf.workload import Workload


@dataclass(frozen=True)
class Measurement:
    """One benchmarked configuration, in the units the model predicts."""

    model: ModelConfig
    scheme: SchemeLike
    batch: int
    context: int
    """KV positions attended by the timed decode steps (their mean)."""
    prefill_tokens: int
    """Prompt length of the timed prefill (TTFT)."""
    tpot_s: float | None
    """Measured decode step time (one token per sequence)."""
    ttft_s: float | None
    """Measured prefill time of the whole batch."""
    device: str
    """The GPU name the benchmark reported."""
    source: str
    """File it came from."""

    @property
    def key(self) -> tuple:
        """Identity of the configuration (to keep fitting and validation sets disjoint)."""
        return (self.model.name, self.scheme.name, self.batch, self.context, self.prefill_tokens)

    def workload(self) -> Workload:
        """The workload whose decode step and prefill the benchmark timed."""
        return Workload(batch=self.batch, prompt=self.prefill_tokens, new_tokens=1, context=self.context)


def _num(rec: dict, *keys: str) -> float | None:
    for key in keys:
        value = rec.get(key)
        if (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value > 0
        ):
            return float(value)
    return None


def measurement_from_record(rec: dict, source: str) -> Measurement | None:
    """A Measurement from one result object, or None when it lacks timings or names an unknown shape."""
    if not isinstance(rec, dict) or rec.get("error"):
        return None
    try:
        config = get_config(str(rec["model"]).lower())
        scheme = resolve_scheme(str(rec["scheme"]))
        batch = int(rec["batch"])
    except (KeyError, TypeError, ValueError, TricoError):
        return None
    prompt = int(rec.get("prompt") or 1)
    new = int(rec.get("new_tokens") or 0)
    is_prefill = rec.get("bench") == "prefill"
    # A decode run starts at `context` (default: the prompt) and its steps attend to the next `new` positions,
    # so the mean step sees context + (new + 1) / 2.
    start = int(rec.get("context") or prompt)
    context = start if is_prefill else start + (new + 1) // 2
    prefill = int(rec.get("prefill") or rec.get("prefill_tokens") or prompt)
    tpot_ms = None if is_prefill else _num(rec, "ms_per_token", "tpot_ms")
    ttft_ms = _num(rec, "ttft_ms")
    if tpot_ms is None and ttft_ms is None:
        return None
    return Measurement(
        model=config,
        scheme=scheme,
        batch=batch,
        context=context,
        prefill_tokens=prefill,
        tpot_s=tpot_ms / 1e3 if tpot_ms else None,
        ttft_s=ttft_ms / 1e3 if ttft_ms else None,
        device=str(rec.get("gpu") or ""),
        source=source,
    )


def load_measurements(paths: Iterable[str | Path]) -> list[Measurement]:
    """Every usable measurement in the given result files (a file holds a list or {"results": [...]})."""
    out: list[Measurement] = []
    for path in paths:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TricoError(f"{path}: cannot read benchmark results ({exc})") from exc
        records = data.get("results", data.get("configs", [data])) if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise TricoError(f"{path}: expected a list of result objects")
        for rec in records:
            m = measurement_from_record(rec, str(path))
            if m is not None:
                out.append(m)
    return out


def for_hardware(measurements: Sequence[Measurement], hw: Hardware) -> list[Measurement]:
    """The measurements taken on `hw` (matched by the reported device name)."""
    base = hw.name.split(":", 1)[0]
    keep = []
    for m in measurements:
        matched = hardware_for_device_name(m.device)
        if matched is not None and matched.name == base:
            keep.append(m)
    return keep


def predict(m: Measurement, hw: Hardware, eff: Efficiency) -> tuple[float | None, float | None]:
    """Predicted (TPOT, TTFT) in seconds for a measured configuration."""
    w = m.workload()
    tpot = decode_phase(m.model, m.scheme, w, hw, eff).seconds if m.tpot_s is not None else None
    ttft = prefill_phase(m.model, m.scheme, w, hw, eff).seconds if m.ttft_s is not None else None
    return tpot, ttft


# Parameter vector layout: bw and flops (bounded through a sigmoid), log bw_half_MB, log launch_us, then one
# log cost per (format, kernel regime) the data can inform, then per quantized prefill format a log cost.
_BOUND = 1.5
_REGIMES = ("gemv_ps", "mma_ps", "row_ps")


@dataclass(frozen=True)
class _Layout:
    decode: tuple[tuple[str, str], ...]
    """(regime, format) pairs with free parameters."""
    prefill_fmts: tuple[str, ...]

    @property
    def size(self) -> int:
        return 4 + len(self.decode) + len(self.prefill_fmts)

    def start(self) -> np.ndarray:
        # A mid-range guess: 80% of peak bandwidth, 60% of peak FLOP/s, 1 MB, 2 us, 0.5 ps (0.01 ps per row).
        head = [math.log(0.8 / 0.7), math.log(0.6 / 0.9), 0.0, math.log(2.0)]
        dec = [math.log(0.01 if regime == "row_ps" else 0.5) for regime, _ in self.decode]
        return np.array(head + dec + [math.log(0.5)] * len(self.prefill_fmts))

    def unpack(self, theta: np.ndarray, source: str) -> Efficiency:
        sig = 1.0 / (1.0 + np.exp(-theta[:2]))
        costs: dict[str, dict[str, float]] = {r: {} for r in _REGIMES}
        for (regime, fmt), t in zip(self.decode, theta[4:]):
            costs[regime][fmt] = float(np.exp(t))
        pre = np.exp(theta[4 + len(self.decode) :])
        return Efficiency(
            bw=float(_BOUND * sig[0]),
            flops=float(_BOUND * sig[1]),
            bw_half_MB=float(np.exp(theta[2])),
            launch_us=float(np.exp(theta[3])),
            **costs,
            prefill_dequant_ps={f: float(v) for f, v in zip(self.prefill_fmts, pre)},
            source=source,
        )


def _layout(ms: Sequence[Measurement]) -> _Layout:
    """The costs the data can inform: a kernel regime of a format needs a decode measurement in that regime
    (lm_head is bf16 in every scheme); a prefill cost needs a timed prefill of a quantized format."""
    ref = Efficiency()
    pairs: set[tuple[str, str]] = set()
    for m in ms:
        if m.tpot_s is None or m.batch > ref.fused_max_rows:
            continue
        regime = "gemv_ps" if m.batch == 1 else ("mma_ps" if m.batch <= ref.mma_rows else "row_ps")
        pairs |= {(regime, kernel_format(m.scheme) or "bf16"), (regime, "bf16")}
    prefill = {f for m in ms if m.ttft_s is not None and (f := kernel_format(m.scheme))}
    order = {r: i for i, r in enumerate(_REGIMES)}
    return _Layout(tuple(sorted(pairs, key=lambda p: (p[1], order[p[0]]))), tuple(sorted(prefill)))


def _residuals(theta: np.ndarray, ms: Sequence[Measurement], hw: Hardware, layout: _Layout) -> np.ndarray:
    eff = layout.unpack(theta, "fit")
    res = []
    for m in ms:
        tpot, ttft = predict(m, hw, eff)
        if tpot is not None:
            res.append(math.log(tpot / m.tpot_s))
        if ttft is not None:
            res.append(math.log(ttft / m.ttft_s))
    return np.asarray(res)


@dataclass(frozen=True)
class FitResult:
    """Fitted efficiency plus how well it reproduces the data it was fitted on."""

    efficiency: Efficiency
    n_measurements: int
    tpot_mape: float | None
    ttft_mape: float | None
    sources: tuple[str, ...]

    def to_dict(self) -> dict:
        """JSON form written to trico/perf/fitted/<device>.json."""
        return {
            "efficiency": self.efficiency.to_dict(),
            "n_measurements": self.n_measurements,
            "fit_tpot_mape_pct": self.tpot_mape,
            "fit_ttft_mape_pct": self.ttft_mape,
            "sources": list(self.sources),
        }


def mape(pairs: Iterable[tuple[float | None, float | None]]) -> float | None:
    """Mean absolute percentage error over (predicted, measured) pairs that both exist."""
    errs = [abs(p - m) / m * 100 for p, m in pairs if p is not None and m]
    return float(np.mean(errs)) if errs else None


def fit(measurements: Sequence[Measurement], hw: Hardware, iterations: int = 60) -> FitResult:
    """Fit Efficiency to measurements taken on `hw` (log-error least squares, Levenberg-Marquardt)."""
    ms = list(measurements)
    if len(ms) < 4:
        raise TricoError(f"calibration needs at least 4 measurements on {hw.name}, got {len(ms)}")
    layout = _layout(ms)
    n_res = sum((m.tpot_s is not None) + (m.ttft_s is not None) for m in ms)
    if n_res <= layout.size:
        raise TricoError(f"calibration needs more timings ({n_res}) than parameters ({layout.size})")
    theta = layout.start()
    lam = 1e-2
    res = _residuals(theta, ms, hw, layout)
    cost = float(res @ res)
    for _ in range(iterations):
        jac = np.empty((res.size, theta.size))
        for j in range(theta.size):
            step = np.zeros_like(theta)
            step[j] = 1e-4
            jac[:, j] = (_residuals(theta + step, ms, hw, layout) - res) / 1e-4
        jtj, jtr = jac.T @ jac, jac.T @ res
        improved = converged = False
        for _ in range(8):
            delta = np.linalg.solve(jtj + lam * np.diag(np.diag(jtj) + 1e-9), -jtr)
            trial = np.clip(theta + delta, -12.0, 12.0)
            trial_res = _residuals(trial, ms, hw, layout)
            trial_cost = float(trial_res @ trial_res)
            if trial_cost < cost:
                converged = cost - trial_cost < 1e-9 * max(cost, 1e-12)
                theta, res, cost, lam, improved = trial, trial_res, trial_cost, max(lam / 3, 1e-7), True
                break
            lam *= 4
        if not improved or converged:
            break
    sources = tuple(sorted({m.source for m in ms}))
    date = _dt.date.today().isoformat()
    label = f"fitted {date} to {len(ms)} measurements on {hw.name.split(':', 1)[0]} from {', '.join(Path(s).name for s in sources)}"
    eff = layout.unpack(theta, label)
    preds = [predict(m, hw, eff) for m in ms]
    return FitResult(
        efficiency=eff,
        n_measurements=len(ms),
        tpot_mape=mape((p[0], m.tpot_s) for p, m in zip(preds, ms)),
        ttft_mape=mape((p[1], m.ttft_s) for p, m in zip(preds, ms)),
        sources=sources,
    )
