"""Estimator: cycles and resources per stage, and tokens/s of the layer engine on an FPGA part.

An analytical model, not synthesis: loop trip counts times initiation intervals plus pipeline depths,
each stage bounded by what its 512-bit AXI port can stream, the layer bounded by the part's
external-memory bandwidth; resources from per-operator costs. Every constant is in `Costs` and is a
planning assumption (typical Vitis HLS operator costs on UltraScale+ DSP48E2), stated as such.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from trico.hls.ir import Graph, LinearWeights, Node, TensorInfo
from trico.hls.parts import Part, get_part


@dataclass(frozen=True)
class Costs:
    """Per-operator costs (assumptions: typical Vitis HLS fp32 cores and fixed-point mapping)."""

    fmul_dsp: int = 3
    fadd_dsp: int = 2
    fadd_latency: int = 4
    """A float accumulation loop can start one iteration per this many cycles (loop-carried add)."""
    fexp_dsp: int = 7
    frsqrt_dsp: int = 8
    fdiv_lut: int = 800
    dsp_a: int = 27
    dsp_b: int = 18
    lut_mult_max_bits: int = 4
    """Multiplies with an operand this narrow or narrower map to LUTs, not DSPs."""
    stage_lut: int = 250
    stage_ff: int = 350
    axi_port_lut: int = 1200
    axi_port_ff: int = 1800
    axi_port_bram18: int = 2
    axi_bytes_per_cycle: int = 64
    """One 512-bit AXI port."""
    lutram_max_bits: int = 1024
    """Buffers this small go to LUTRAM, larger ones to BRAM."""


COSTS = Costs()


def ctype_bits(ctype: str) -> int:
    """Bit width of a C++ element type ('float' or 'ap_fixed<W, I, ...>')."""
    m = re.match(r"ap_u?fixed<\s*(\d+)", ctype)
    return int(m.group(1)) if m else 32


def _is_float(ctype: str) -> bool:
    return not ctype.startswith("ap_")


def mult_cost(a_bits: int, b_bits: int, c: Costs = COSTS) -> tuple[int, int]:
    """(DSP, LUT) of one fixed-point multiplier."""
    lo, hi = sorted((a_bits, b_bits))
    if lo <= c.lut_mult_max_bits:
        return 0, lo * hi
    return math.ceil(hi / c.dsp_a) * math.ceil(lo / c.dsp_b), 0


@dataclass
class StageEstimate:
    """One stage: its loop nest timing, external traffic and resources."""

    name: str
    op: str
    trip: int
    ii: int
    depth: int
    compute_cycles: int
    ext_bytes: int
    port: str
    cycles: int = 0
    dsp: int = 0
    lut: int = 0
    ff: int = 0
    bram18: int = 0


@dataclass
class Estimate:
    """Whole-design estimate on one part (predicted, not synthesized)."""

    part: str
    clock_mhz: float
    n_layers: int
    stages: list[StageEstimate]
    layer_cycles: int
    layer_bound: str
    """'compute' or 'memory': what sets the layer's cycles."""
    head_cycles: int
    token_cycles: int
    tokens_per_s: float
    resources: dict[str, int]
    utilization: dict[str, float]
    fits: bool
    notes: list[str] = field(default_factory=list)
    head_resources: dict[str, int] = field(default_factory=dict)
    """The output head's share of `resources` (empty without a head)."""

    @property
    def latency_ms(self) -> float:
        """Predicted time of one whole-model decode step."""
        return self.token_cycles / (self.clock_mhz * 1e3)

    def to_dict(self) -> dict:
        """JSON-friendly form."""
        d = asdict(self)
        d["latency_ms"] = self.latency_ms
        return d


def _buffer_cost(
    size: int, bits: int, partition: int, stream: str, c: Costs, depth: int = 2
) -> tuple[int, int]:
    """(BRAM18, LUT) of one on-chip buffer: ping-pong buffers are doubled, a FIFO holds `depth` elements."""
    if stream == "fifo":
        size, partition, copies = depth, 1, 1
        if depth <= 2:
            return 0, 2 * bits
    else:
        copies = 2 if stream == "pipo" else 1
    banks = max(1, partition)
    bank_bits = math.ceil(size / banks) * bits
    if bank_bits <= c.lutram_max_bits:
        return 0, copies * banks * math.ceil(bank_bits / 64)
    return copies * banks * math.ceil(bank_bits / 18432), 0


def _linear_stage(n: Node, g: Graph, c: Costs) -> StageEstimate:
    w: LinearWeights = n.params["weight"]
    u = n.attrs.get("unroll", 1)
    acc = n.attrs.get("acc", "float")
    x_t = g.tensors[n.inputs[0]].ctype
    fl = _is_float(acc)
    ii = c.fadd_latency if fl else 1
    depth = 12 if fl else 6
    groups = w.k // w.group
    compute = w.n * ((w.k // u) * ii + groups + depth)
    side = 4 * w.n * groups * (2 if (w.fmt == "uint4" and not w.symmetric) else 1) if w.fmt != "float" else 0
    ext = int(w.n * w.k * w.code_bits / 8) + side
    s = StageEstimate(n.name, n.op, w.n * w.k // u, ii, depth, compute, ext, "gmem_w")
    acc_bits = 32 if fl else ctype_bits(acc)
    if w.fmt == "tern2":  # add, subtract or skip: an adder and a select per lane, no multiplier
        s.dsp, s.lut = 0, u * 2 * acc_bits
    elif fl:
        s.dsp, s.lut = u * (c.fmul_dsp + c.fadd_dsp), u * 150
    else:
        wbits = (
            ctype_bits(n.attrs.get("wtype", "float")) if w.fmt == "float" else {"int8": 8, "uint4": 5}[w.fmt]
        )
        dsp, lut = mult_cost(ctype_bits(x_t), wbits, c)
        s.dsp, s.lut = u * dsp, u * (lut + acc_bits)
    # Group epilogue: one fp32 multiply-add by the scale (and min) per group, shared by the lanes.
    if w.fmt != "float":
        s.dsp += c.fmul_dsp + c.fadd_dsp
        s.lut += 300
    s.ff = u * 2 * acc_bits + 200
    return s


def _attention_stage(n: Node, g: Graph, c: Costs) -> StageEstimate:
    a = n.attrs
    h, hkv, d, ctx = a["n_heads"], a["n_kv_heads"], a["head_dim"], a["max_ctx"]
    fl = _is_float(a.get("acc", "float"))
    ua = a.get("unroll", 1)
    ii = c.fadd_latency if fl else 1
    # q.k: lane accumulators carry across iterations; p.v: one output's updates are D/UA cycles apart.
    ii_v = max(1, math.ceil(ii / (d // ua))) if fl else 1
    per_head = ctx * ((d // ua) * ii + 5) + 3 * ctx + ctx * (d // ua) * ii_v + d + 40
    compute = hkv * d + h * per_head
    kv_bytes = math.ceil(ctype_bits(a.get("kv_type", "float")) / 8)
    ext = h * ctx * d * 2 * kv_bytes + 2 * hkv * d * kv_bytes
    s = StageEstimate(n.name, n.op, h * ctx * d * 2 // ua, ii, 12, compute, ext, "gmem_kv")
    kvb = ctype_bits(a.get("kv_type", "float"))
    qb = ctype_bits(g.tensors[n.inputs[0]].ctype)
    mdsp = (c.fmul_dsp + c.fadd_dsp) if fl else mult_cost(qb, kvb, c)[0]
    s.dsp = 2 * ua * mdsp + c.fexp_dsp + 2 * c.fmul_dsp + c.fadd_dsp
    acc_bits = 32 if fl else ctype_bits(a.get("acc", "float"))
    s.lut = c.fdiv_lut + 1500 + 2 * ua * acc_bits
    s.ff = 2500 + 4 * ua * acc_bits
    s.bram18 = 3 * _buffer_cost(ctx, 32, 1, "plain", c)[0]  # score, p and exp buffers
    return s


def _vector_stage(n: Node, g: Graph, c: Costs) -> StageEstimate:
    size = g.tensors[n.output].size
    acc = n.attrs.get("acc", "float")
    fl = _is_float(acc)
    if n.op == "rmsnorm":
        ii = c.fadd_latency if fl else 1
        compute = size * ii + size + 40
        xb = ctype_bits(g.tensors[n.inputs[0]].ctype)
        dsp = (c.fmul_dsp + c.fadd_dsp if fl else mult_cost(xb, xb, c)[0]) + 2 * c.fmul_dsp + c.frsqrt_dsp
        s = StageEstimate(
            n.name, n.op, 2 * size, ii, 20, compute, 4 * size, "gmem_p", dsp=dsp, lut=1200, ff=1500
        )
    elif n.op == "rope":
        hd = n.attrs["head_dim"]
        compute = hd + size // 2 + 10
        xb = ctype_bits(g.tensors[n.inputs[0]].ctype)
        per = c.fmul_dsp if xb >= 32 else mult_cost(xb, 18, c)[0]
        s = StageEstimate(
            n.name, n.op, size // 2, 1, 8, compute, 8 * hd, "gmem_p", dsp=4 * per, lut=600, ff=800
        )
    else:
        dsp = {"silu_gate": c.fexp_dsp + 2 * c.fmul_dsp, "silu": c.fexp_dsp + c.fmul_dsp, "mul": c.fmul_dsp}
        s = StageEstimate(n.name, n.op, size, 1, 10, size + 10, 0, "-", dsp=dsp.get(n.op, 0), lut=200, ff=300)
        if n.op in dsp:
            s.lut += c.fdiv_lut
    return s


STAGE_MODELS = {"linear": _linear_stage, "linear_add": _linear_stage, "attention": _attention_stage}
"""Stage cost models by op; every other op is a vector stage."""


def estimate_graph(
    graph: Graph,
    part: Part | str,
    n_layers: int = 1,
    head: LinearWeights | None = None,
    head_unroll: int = 8,
    c: Costs = COSTS,
) -> Estimate:
    """Estimate one layer's stages, the layer engine over n_layers and (optionally) the output head."""
    part = get_part(part) if isinstance(part, str) else part
    f_hz = part.clock_mhz * 1e6
    ext_per_cycle = part.mem_bw_gbs * 1e9 / f_hz
    stages: list[StageEstimate] = []
    for n in graph.nodes:
        model = STAGE_MODELS.get(n.op, _vector_stage)
        s = model(n, graph, c)
        s.lut += c.stage_lut
        s.ff += c.stage_ff
        port_bound = math.ceil(s.ext_bytes / min(c.axi_bytes_per_cycle, ext_per_cycle)) if s.ext_bytes else 0
        s.cycles = max(s.compute_cycles, port_bound)
        stages.append(s)
    # DATAFLOW: a stage starts when its producers finish (every stage needs whole vectors).
    finish: dict[str, int] = {}
    for n, s in zip(graph.nodes, stages):
        start = max([finish[t] for t in n.inputs if t in finish], default=0)
        for t in n.outputs:
            finish[t] = start + s.cycles
    critical = max(finish.values(), default=0)
    mem_bound = math.ceil(sum(s.ext_bytes for s in stages) / ext_per_cycle)
    layer_cycles = max(critical, mem_bound)
    head_cycles = 0
    head_res: dict[str, int] = {}
    notes = [
        "analytical estimate (no synthesis): trip counts x II + depth, AXI-port and memory-bandwidth bounds",
        f"clock {part.clock_mhz:g} MHz and {part.usable:.0%} usable resources are planning assumptions",
    ]
    res = {k: sum(getattr(s, k) for s in stages) for k in ("dsp", "lut", "ff", "bram18")}
    # On-chip buffers between stages.
    for t in graph.tensors.values():
        if graph.producer(t.name) is None:
            continue
        bram, lut = _buffer_cost(t.size, ctype_bits(t.ctype), t.partition, t.stream, c, t.depth)
        res["bram18"] += bram
        res["lut"] += lut
    ports = 5
    res["lut"] += ports * c.axi_port_lut
    res["ff"] += ports * c.axi_port_ff
    res["bram18"] += ports * c.axi_port_bram18
    if head is not None:
        # The head runs in fp32 after the final norm (see the emitter's trico_decode).
        head_graph = Graph(["x"], "logits", [], {"x": TensorInfo("x", head.k)})
        head_node = Node(
            "lm_head", "linear", ["x"], "logits", attrs={"unroll": head_unroll}, params={"weight": head}
        )
        hs = _linear_stage(head_node, head_graph, c)
        hs_port = math.ceil(hs.ext_bytes / min(c.axi_bytes_per_cycle, ext_per_cycle))
        head_cycles = max(hs.compute_cycles, hs_port) + 2 * head.n + 3 * graph.meta.get("dim", head.k)
        head_res = {k: int(getattr(hs, k)) for k in ("dsp", "lut", "ff")}
        for k, v in head_res.items():
            res[k] += v
        notes.append("output head: fp32 mat-vec over the vocabulary plus argmax")
    token_cycles = n_layers * layer_cycles + head_cycles
    budget = part.budget()
    util = {
        k: res[k] / {"dsp": part.dsp, "lut": part.lut, "ff": part.ff, "bram18": part.bram18}[k] for k in res
    }
    fits = all(res[k] <= budget[k] for k in budget)
    return Estimate(
        part=part.key,
        clock_mhz=part.clock_mhz,
        n_layers=n_layers,
        stages=stages,
        layer_cycles=int(layer_cycles),
        layer_bound="memory" if mem_bound >= critical else "compute",
        head_cycles=int(head_cycles),
        token_cycles=int(token_cycles),
        tokens_per_s=f_hz / token_cycles if token_cycles else 0.0,
        resources={k: int(v) for k, v in res.items()},
        utilization=util,
        fits=fits,
        head_resources=head_res,
        notes=notes,
    )


def estimate_design(design, part: str) -> Estimate:  # noqa: ANN001 - Design (avoids an import cycle)
    """Estimate a compiled Design on a part: the layer engine over all its layers (and head)."""
    n_layers = len(design.layers) if design.head is not None else design.config.n_layers
    head = design.head.head.stub() if design.head is not None else None
    est = estimate_graph(design.graph, part, n_layers=n_layers, head=head, head_unroll=design.options.unroll)
    if design.head is None:
        est.notes.append(
            f"tokens/s assumes the one-layer design's engine loops over all {n_layers} layers (output head excluded)"
        )
    return est
