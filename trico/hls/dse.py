"""Design-space exploration: enumerate weight formats, precisions and unroll factors, keep what fits the
part's budget, and return the Pareto front of decode latency vs DSP and BRAM."""

from __future__ import annotations

import copy
import itertools
import time
from dataclasses import asdict, dataclass, field

from trico.config import ModelConfig
from trico.errors import TricoError
from trico.hls.estimator import estimate_graph
from trico.hls.ir import Graph, LinearWeights
from trico.hls.parts import get_part
from trico.hls.passes import LAYER_FLOW, HlsOptions, run_flow


@dataclass(frozen=True)
class WeightChoice:
    """How every projection's weights are stored (the head uses `head_fmt`)."""

    name: str
    fmt: str
    group: int
    """Group along K; 0 means per output channel (group = K)."""
    symmetric: bool = True
    head_fmt: str = "int8"


WEIGHT_CHOICES: dict[str, WeightChoice] = {
    c.name: c
    for c in [
        WeightChoice("fp32", "float", 0, head_fmt="float"),
        WeightChoice("int8", "int8", 0),
        WeightChoice("int4-g64", "uint4", 64),
        WeightChoice("ternary", "tern2", 0),
    ]
}
"""Weight formats DSE tries, by name (formats the C++ library reads)."""


@dataclass
class DsePoint:
    """One design: its knobs and its estimate."""

    weights: str
    precision: str
    unroll: int
    latency_ms: float
    tokens_per_s: float
    dsp: int
    lut: int
    ff: int
    bram18: int
    bound: str
    fits: bool
    layer_dsp: int = 0
    """DSP of the decoder-layer stages alone (the output head excluded)."""
    pareto: bool = False


@dataclass
class DseResult:
    """All points explored on a part, the Pareto front among those that fit, and how long it took."""

    part: str
    model: str
    points: list[DsePoint]
    seconds: float
    budget: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def feasible(self) -> list[DsePoint]:
        """Points inside the budget."""
        return [p for p in self.points if p.fits]

    @property
    def pareto(self) -> list[DsePoint]:
        """Pareto-optimal feasible points, fastest first."""
        return sorted((p for p in self.points if p.pareto), key=lambda p: p.latency_ms)

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        return {
            "part": self.part,
            "model": self.model,
            "seconds": self.seconds,
            "budget": self.budget,
            "notes": self.notes,
            "points": [asdict(p) for p in self.points],
        }


def _stub(w: LinearWeights, choice: WeightChoice, fmt: str | None = None) -> LinearWeights:
    fmt = fmt or choice.fmt
    group = w.k if fmt in ("float", "int8", "tern2") or choice.group == 0 else choice.group
    if w.k % group:
        raise TricoError(f"group {group} does not divide K={w.k} for weights {choice.name}")
    return LinearWeights(fmt, w.n, w.k, group, choice.symmetric, absmax=w.absmax, rms=w.rms)


def variant(base: Graph, choice: WeightChoice, opts: HlsOptions) -> Graph:
    """A copy of the traced graph with every projection stored as `choice`, run through the layer flow."""
    g = copy.copy(base)
    g.nodes = [copy.copy(n) for n in base.nodes]
    for n in g.nodes:
        n.attrs = dict(n.attrs)
        n.params = {k: (_stub(v, choice) if isinstance(v, LinearWeights) else v) for k, v in n.params.items()}
        n.inputs = list(n.inputs)
    g.tensors = {k: copy.copy(v) for k, v in base.tensors.items()}
    g.meta = dict(base.meta)
    g.meta["passes"] = []
    return run_flow(g, LAYER_FLOW, opts)


def pareto_flags(points: list[DsePoint]) -> None:
    """Mark feasible points that no other feasible point beats on latency, DSP and BRAM at once."""
    feas = [p for p in points if p.fits]
    for p in feas:
        keys = (p.latency_ms, p.dsp, p.bram18)
        p.pareto = not any(
            (q.latency_ms, q.dsp, q.bram18) != keys
            and q.latency_ms <= p.latency_ms
            and q.dsp <= p.dsp
            and q.bram18 <= p.bram18
            for q in feas
        )


def explore(
    base: Graph,
    config: ModelConfig,
    part: str,
    weights: list[str] | None = None,
    precisions: list[str] | None = None,
    unrolls: list[int] | None = None,
    max_ctx: int = 128,
    budget: float | None = None,
    vocab: int | None = None,
) -> DseResult:
    """Estimate every combination on the part; raise if none fits the budget."""
    t0 = time.perf_counter()
    p = get_part(part)
    weights = weights or list(WEIGHT_CHOICES)
    unknown = [w for w in weights if w not in WEIGHT_CHOICES]
    if unknown:
        raise TricoError(f"unknown DSE weight choice(s) {unknown}; known: {', '.join(WEIGHT_CHOICES)}")
    precisions = precisions or ["float", "fixed"]
    unrolls = unrolls or [1, 2, 4, 8, 16, 32, 64, 128]
    if budget is not None and not 0 < budget <= 1:
        raise TricoError(f"budget must be a fraction of the part in (0, 1], got {budget}")
    budget_res = p.budget(budget)
    points: list[DsePoint] = []
    for wname, prec, u in itertools.product(weights, precisions, unrolls):
        choice = WEIGHT_CHOICES[wname]
        g = variant(base, choice, HlsOptions(precision=prec, unroll=u, max_ctx=max_ctx))
        head = LinearWeights(choice.head_fmt, vocab or config.vocab_size, config.dim, config.dim)
        est = estimate_graph(g, p, n_layers=config.n_layers, head=head, head_unroll=u)
        fits = all(est.resources[k] <= budget_res[k] for k in budget_res)
        points.append(
            DsePoint(
                wname,
                prec,
                u,
                est.latency_ms,
                est.tokens_per_s,
                est.resources["dsp"],
                est.resources["lut"],
                est.resources["ff"],
                est.resources["bram18"],
                est.layer_bound,
                fits,
                est.resources["dsp"] - est.head_resources.get("dsp", 0),
            )
        )
    pareto_flags(points)
    result = DseResult(p.key, config.name, points, time.perf_counter() - t0, budget_res)
    result.notes.append(
        "latency = one whole-model decode step (all layers through the layer engine + output head), estimated"
    )
    result.notes.append("output head: int8 for quantized choices, fp32 for fp32 weights")
    if not result.feasible:
        smallest = min(points, key=lambda q: q.dsp)
        raise TricoError(
            f"no design fits the budget on {p.key} (DSP <= {budget_res['dsp']:.0f}, LUT <= {budget_res['lut']:.0f}, "
            f"BRAM18 <= {budget_res['bram18']:.0f}); the smallest needs {smallest.dsp} DSP, {smallest.lut} LUT, "
            f"{smallest.bram18} BRAM18 ({smallest.weights}, {smallest.precision}, unroll {smallest.unroll})"
        )
    return result
