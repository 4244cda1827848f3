"""Design-space exploration: sweep configurations, mark what does not fit, keep the Pareto front.

Objectives are registered by name (latency, throughput per $, energy, quality...); quality comes from
trico's measured quality results (docs/quality.json), never from the performance model.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from trico.config import ModelConfig
from trico.errors import TricoError
from trico.perf.efficiency import Efficiency, load_efficiency
from trico.perf.hardware import Hardware, apply_variant
from trico.perf.model import ROOFLINE, Estimate, estimate
from trico.perf.scheme import SchemeLike, resolve_scheme
from trico.perf.workload import SpecDecode, Workload


@dataclass(frozen=True)
class Objective:
    """A quantity to optimise, read from an estimate (and the quality table)."""

    name: str
    label: str
    """Axis label with unit."""
    minimize: bool
    value: Callable[[Estimate, Mapping[str, dict]], float | None]


OBJECTIVES: dict[str, Objective] = {}


def register_objective(obj: Objective) -> Objective:
    """Add an objective to the registry (by name)."""
    OBJECTIVES[obj.name] = obj
    return obj


def _quality_value(key: str) -> Callable[[Estimate, Mapping[str, dict]], float | None]:
    def read(est: Estimate, quality: Mapping[str, dict]) -> float | None:
        row = quality.get(est.scheme)
        if row is None and est.scheme in ("bf16", "fp16"):
            return 0.0 if key in ("kl_mean", "dppl") else (1.0 if key == "top1" else None)
        value = None if row is None else row.get(key)
        return float(value) if isinstance(value, (int, float)) else None

    return read


for _obj in (
    Objective("tpot", "time per output token (ms)", True, lambda e, q: e.tpot_s * 1e3),
    Objective("ttft", "time to first token (ms)", True, lambda e, q: e.ttft_s * 1e3),
    Objective("throughput", "decode throughput (tokens/s)", False, lambda e, q: e.decode_tok_s),
    Objective(
        "tokens_per_usd",
        "generated tokens per US$",
        False,
        lambda e, q: 1e6 / e.usd_per_Mtok if e.usd_per_Mtok else None,
    ),
    Objective("usd_per_mtok", "US$ per million generated tokens", True, lambda e, q: e.usd_per_Mtok),
    Objective("energy", "energy per generated token at TDP (J)", True, lambda e, q: e.J_per_token),
    Objective("memory", "device memory needed (GB)", True, lambda e, q: e.memory.total_GB),
    Objective("kl", "KL divergence to the unquantized model (nats/token)", True, _quality_value("kl_mean")),
    Objective("top1", "top-1 agreement with the unquantized model", False, _quality_value("top1")),
    Objective("dppl", "perplexity increase over the unquantized model", True, _quality_value("dppl")),
):
    register_objective(_obj)


def get_objective(name: str) -> Objective:
    """Look up an objective by name, with the list of valid ones on error."""
    key = name.strip().lower()
    if key not in OBJECTIVES:
        raise TricoError(f"unknown objective {name!r}; known: {', '.join(OBJECTIVES)}")
    return OBJECTIVES[key]


def load_quality(path: str | Path | None) -> dict[str, dict]:
    """Measured quality per scheme name from a quality.json ({scheme: {...}} or a list of rows with 'scheme')."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise TricoError(f"{path}: corrupt quality file ({exc})") from exc
    rows = data.get("results", data.get("rows", data)) if isinstance(data, dict) else data
    out: dict[str, dict] = {}
    if isinstance(rows, dict):
        out = {str(k): v for k, v in rows.items() if isinstance(v, dict)}
    elif isinstance(rows, list):
        for row in rows:
            if isinstance(row, dict) and "scheme" in row:
                # Keep the first row per scheme: the file lists the default model first.
                out.setdefault(str(row["scheme"]), row)
    for row in out.values():
        if "kl_mean" not in row and "kl" in row:
            row["kl_mean"] = row["kl"]
    return out


@dataclass(frozen=True)
class Constraints:
    """Limits a configuration must satisfy to be eligible for the Pareto front."""

    must_fit: bool = True
    max_tpot_ms: float | None = None
    max_ttft_ms: float | None = None
    max_memory_GB: float | None = None
    max_kl: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_tpot_ms", "max_ttft_ms", "max_memory_GB", "max_kl"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise TricoError(f"constraint {name} must be a number > 0, got {value!r}")

    def violations(self, est: Estimate, quality: Mapping[str, dict]) -> list[str]:
        """Why `est` is not eligible (empty when it is)."""
        out = []
        if self.must_fit and not est.fits:
            out.append(f"does not fit: {est.memory.describe()}")
        if self.max_tpot_ms is not None and est.tpot_s * 1e3 > self.max_tpot_ms:
            out.append(f"TPOT {est.tpot_s * 1e3:.2f} ms > {self.max_tpot_ms:g} ms")
        if self.max_ttft_ms is not None and est.ttft_s * 1e3 > self.max_ttft_ms:
            out.append(f"TTFT {est.ttft_s * 1e3:.1f} ms > {self.max_ttft_ms:g} ms")
        if self.max_memory_GB is not None and est.memory.total_GB > self.max_memory_GB:
            out.append(f"memory {est.memory.total_GB:.1f} GB > {self.max_memory_GB:g} GB")
        if self.max_kl is not None:
            kl = OBJECTIVES["kl"].value(est, quality)
            if kl is None:
                out.append("no measured KL for this scheme")
            elif kl > self.max_kl:
                out.append(f"KL {kl:.4f} > {self.max_kl:g}")
        return out


@dataclass(frozen=True)
class Space:
    """The axes of a sweep; the sweep is their Cartesian product."""

    models: Sequence[ModelConfig]
    schemes: Sequence[str | SchemeLike]
    hardware: Sequence[Hardware]
    batches: Sequence[int] = (1,)
    prompts: Sequence[int] = (512,)
    new_tokens: Sequence[int] = (256,)
    kv_keep: Sequence[float] = (1.0,)
    tp: Sequence[int] = (1,)
    spec: Sequence[SpecDecode | None] = (None,)
    reserve_GB: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "models",
            "schemes",
            "hardware",
            "batches",
            "prompts",
            "new_tokens",
            "kv_keep",
            "tp",
            "spec",
        ):
            if not getattr(self, name):
                raise TricoError(f"sweep axis {name!r} is empty")

    @property
    def size(self) -> int:
        """Number of configurations in the product."""
        return math.prod(
            len(getattr(self, n))
            for n in (
                "models",
                "schemes",
                "hardware",
                "batches",
                "prompts",
                "new_tokens",
                "kv_keep",
                "tp",
                "spec",
            )
        )


@dataclass(frozen=True)
class Point:
    """One swept configuration with its estimate and eligibility."""

    estimate: Estimate
    violations: tuple[str, ...] = ()
    pareto: bool = False
    objectives: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def eligible(self) -> bool:
        """True when every constraint holds."""
        return not self.violations


def efficiency_for(hw: Hardware, calibrated: bool = True) -> Efficiency:
    """The stored calibration of a device (its base device for what-ifs), else the plain roofline."""
    if not calibrated:
        return ROOFLINE
    return load_efficiency(hw.name) or ROOFLINE


def sweep(
    space: Space,
    constraints: Constraints = Constraints(),
    objectives: Sequence[str] = ("tpot", "tokens_per_usd"),
    quality: Mapping[str, dict] | None = None,
    calibrated: bool = True,
    max_points: int = 200_000,
) -> list[Point]:
    """Estimate every configuration of `space`; mark constraint violations and the Pareto front."""
    if space.size > max_points:
        raise TricoError(
            f"sweep of {space.size} configurations exceeds the limit of {max_points}; narrow an axis"
        )
    quality = quality or {}
    objs = [get_objective(o) for o in objectives]
    schemes = [resolve_scheme(s) for s in space.schemes]
    effs = {hw.name: efficiency_for(hw, calibrated) for hw in space.hardware}
    points = []
    for cfg, scheme, hw, b, p, n, keep, tp, spec in itertools.product(
        space.models,
        schemes,
        space.hardware,
        space.batches,
        space.prompts,
        space.new_tokens,
        space.kv_keep,
        space.tp,
        space.spec,
    ):
        w = Workload(
            batch=b, prompt=p, new_tokens=n, kv_keep=keep, tp=tp, spec=spec, reserve_GB=space.reserve_GB
        )
        try:
            est = estimate(cfg, scheme, w, hw, effs[hw.name])
        except TricoError as exc:
            # A configuration the model refuses (e.g. tp not dividing heads) is reported, not fatal.
            raise TricoError(f"{cfg.name} / {scheme.name} / {hw.name} / batch {b}: {exc}") from exc
        values = {o.name: o.value(est, quality) for o in objs}
        viol = constraints.violations(est, quality)
        viol += [f"no value for objective {k}" for k, v in values.items() if v is None]
        points.append(Point(est, tuple(viol), False, values))
    return mark_pareto(points, objs)


def _dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def mark_pareto(points: Sequence[Point], objectives: Sequence[Objective]) -> list[Point]:
    """Flag the eligible points no other eligible point dominates on every objective."""
    eligible = [i for i, p in enumerate(points) if p.eligible]
    # Minimisation form of each objective vector.
    vecs = {
        i: [points[i].objectives[o.name] * (1 if o.minimize else -1) for o in objectives] for i in eligible
    }
    order = sorted(eligible, key=lambda i: vecs[i])
    front: list[int] = []
    for i in order:
        if not any(_dominates(vecs[j], vecs[i]) or vecs[j] == vecs[i] for j in front):
            front.append(i)
    on_front = set(front)
    return [replace(p, pareto=i in on_front) for i, p in enumerate(points)]


@dataclass(frozen=True)
class WhatIf:
    """One step of a hardware what-if: the scaled device and where the time goes."""

    factor: float
    hardware: Hardware
    estimate: Estimate


def hardware_what_if(
    config: ModelConfig,
    scheme: str | SchemeLike,
    workload: Workload,
    hw: Hardware,
    knob: str,
    factors: Iterable[float],
    calibrated: bool = True,
) -> list[WhatIf]:
    """Scale one figure of a device (knob 'bw', 'flops', 'ic' or 'mem') and re-estimate at each factor."""
    if knob not in ("bw", "flops", "ic", "mem"):
        raise TricoError(f"what-if knob must be bw, flops, ic or mem, got {knob!r}")
    eff = efficiency_for(hw, calibrated)
    out = []
    for f in factors:
        if not (math.isfinite(f) and f > 0):
            raise TricoError(f"what-if factors must be > 0, got {f!r}")
        variant = apply_variant(hw, f"{knob}={f:g}x")
        out.append(WhatIf(f, variant, estimate(config, scheme, workload, variant, eff)))
    return out


def iter_values(points: Iterable[Point], key: str) -> Iterable[float | None]:
    """The values of one objective across points (None where missing)."""
    return (p.objectives.get(key) for p in points)
