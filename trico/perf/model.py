"""The performance model: (ModelConfig, Scheme, Workload, Hardware[, Efficiency]) -> Estimate, pure functions.

Each operator takes max(memory time, compute time + format-specific ALU time) plus its kernel launches; a step
is the sum of its operators (kernels run one after another on one stream). With the default Efficiency this
is the plain roofline; calibration.py fits the Efficiency factors to measured benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trico.config import ModelConfig
from trico.errors import TricoError
from trico.perf import cost
from trico.perf.efficiency import Efficiency
from trico.perf.hardware import Hardware
from trico.perf.operators import Op, activation_bytes, kv_cache_bytes, step_ops, weight_bytes
from trico.perf.scheme import SchemeLike, resolve_scheme
from trico.perf.workload import Workload

GB = 1e9
ROOFLINE = Efficiency()


@dataclass(frozen=True)
class OpTime:
    """One operator's modelled time and what bounds it."""

    op: Op
    seconds: float
    """Time of all `op.count` instances, launches included."""
    memory_s: float
    compute_s: float
    dequant_s: float
    launch_s: float
    bound: str
    """'memory', 'compute', 'interconnect' or 'overhead' (launches dominate)."""
    body_bound: str = "memory"
    """What bounds the work itself, launches aside: 'memory', 'compute' or 'interconnect'."""


@dataclass(frozen=True)
class PhaseEstimate:
    """A prefill pass or one decode step."""

    seconds: float
    flops: float
    bytes: float
    ops: tuple[OpTime, ...]
    bound: str
    """Which of memory, compute, interconnect or overhead takes most of the time."""

    def time_by_bound(self) -> dict[str, float]:
        """Seconds spent in operators of each bound."""
        out: dict[str, float] = {}
        for t in self.ops:
            out[t.bound] = out.get(t.bound, 0.0) + t.seconds
        return out


@dataclass(frozen=True)
class MemoryBreakdown:
    """Device memory needed per device (GB) against its capacity."""

    weights_GB: float
    kv_cache_GB: float
    activations_GB: float
    draft_GB: float
    reserve_GB: float
    capacity_GB: float

    @property
    def total_GB(self) -> float:
        """Everything that must be resident at the peak."""
        return self.weights_GB + self.kv_cache_GB + self.activations_GB + self.draft_GB + self.reserve_GB

    @property
    def fits(self) -> bool:
        """True when the total fits in device memory."""
        return self.total_GB <= self.capacity_GB

    def describe(self) -> str:
        """One line: weights + KV + activations (+ draft, reserve) = total vs capacity."""
        parts = [
            f"weights {self.weights_GB:.2f}",
            f"KV cache {self.kv_cache_GB:.2f}",
            f"activations {self.activations_GB:.2f}",
        ]
        if self.draft_GB:
            parts.append(f"draft {self.draft_GB:.2f}")
        if self.reserve_GB:
            parts.append(f"reserve {self.reserve_GB:.2f}")
        verdict = "fits in" if self.fits else "does NOT fit in"
        return f"{' + '.join(parts)} = {self.total_GB:.2f} GB, {verdict} {self.capacity_GB:g} GB"


@dataclass(frozen=True)
class Estimate:
    """Predicted latency, throughput, memory, cost and energy of one configuration."""

    model: str
    scheme: str
    hardware: str
    workload: Workload
    prefill: PhaseEstimate
    decode: PhaseEstimate
    """One decode step (draft steps + verification when speculative)."""
    ttft_s: float
    """Time to first token: the prefill of the whole batch."""
    tpot_s: float
    """Time per output token of one sequence (decode step time / expected tokens per step)."""
    decode_tok_s: float
    """Generated tokens per second over the batch during decode."""
    e2e_tok_s: float
    """Generated tokens per second over the whole request (prefill included)."""
    memory: MemoryBreakdown
    usd_per_Mtok: float | None
    """$ per million generated tokens at the device price (None without a price)."""
    J_per_token: float | None
    """Joules per generated token at TDP (None without a TDP figure)."""
    efficiency: str
    """Source of the efficiency factors used."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def fits(self) -> bool:
        """True when the configuration fits in device memory."""
        return self.memory.fits

    def row(self) -> dict:
        """Flat dict for tables, CSV and JSON."""
        w = self.workload
        return {
            "model": self.model,
            "scheme": self.scheme,
            "hardware": self.hardware,
            "batch": w.batch,
            "prompt": w.prompt,
            "new_tokens": w.new_tokens,
            "context": w.decode_context,
            "kv_keep": w.kv_keep,
            "tp": w.tp,
            "spec_draft_len": w.spec.draft_len if w.spec else 0,
            "spec_acceptance": w.spec.acceptance if w.spec else 0.0,
            "ttft_ms": self.ttft_s * 1e3,
            "tpot_ms": self.tpot_s * 1e3,
            "decode_tok_s": self.decode_tok_s,
            "e2e_tok_s": self.e2e_tok_s,
            "prefill_bound": self.prefill.bound,
            "decode_bound": self.decode.bound,
            "weights_GB": self.memory.weights_GB,
            "kv_cache_GB": self.memory.kv_cache_GB,
            "activations_GB": self.memory.activations_GB,
            "memory_GB": self.memory.total_GB,
            "capacity_GB": self.memory.capacity_GB,
            "fits": self.fits,
            "usd_per_Mtok": self.usd_per_Mtok,
            "J_per_token": self.J_per_token,
        }


def time_op(op: Op, hw: Hardware, eff: Efficiency) -> OpTime:
    """Modelled time of all instances of one operator on `hw`."""
    launch = op.count * op.kernels * eff.launch_us * 1e-6
    if op.kind == "allreduce":
        if hw.interconnect_GBps is None:
            raise TricoError(
                f"{hw.name} has no interconnect figure: tensor parallelism cannot be modelled on it"
            )
        # Ring all-reduce: each device sends and receives 2 (tp - 1) / tp of the message (folded into op.bytes
        # by _phase). No benchmark covers the interconnect yet, so it runs at its datasheet rate.
        comm = op.count * op.bytes / (hw.interconnect_GBps * GB)
        return OpTime(op, comm + launch, 0.0, 0.0, 0.0, launch, "interconnect", "interconnect")
    mem = op.bytes / (hw.memory_bandwidth_GBps * GB * eff.bandwidth_fraction(op.bytes)) if op.bytes else 0.0
    cmp = op.flops / (hw.peak_flops(op.precision) * eff.flops) if op.flops else 0.0
    deq, separate = eff.kernel_seconds(op.fmt, op.weight_elems, op.rows)
    if separate:
        # Dequantize-then-matmul: the extra pass runs before the dense matmul, not under it.
        body = max(mem, cmp) + deq
        body_bound = "memory" if mem >= cmp else "compute"
    else:
        # Fused kernels unpack (ALU) while the next weights stream in: ALU work hides under memory time.
        body = max(mem, cmp + deq)
        body_bound = "memory" if mem >= cmp + deq else "compute"
    bound = "overhead" if launch > op.count * body else body_bound
    return OpTime(
        op,
        op.count * body + launch,
        op.count * mem,
        op.count * cmp,
        op.count * deq,
        launch,
        bound,
        body_bound,
    )


def _dominant(times: tuple[OpTime, ...]) -> str:
    """The bottleneck of a phase: the largest of memory, compute and interconnect work, or launch overhead."""
    by_bound = {"overhead": sum(t.launch_s for t in times)}
    for t in times:
        by_bound[t.body_bound] = by_bound.get(t.body_bound, 0.0) + t.seconds - t.launch_s
    return max(by_bound, key=by_bound.__getitem__)


def _phase(ops: list[Op], hw: Hardware, eff: Efficiency, tp: int) -> PhaseEstimate:
    scaled = []
    for op in ops:
        if op.kind == "allreduce":
            op = Op(op.name, op.kind, op.count, 0.0, op.bytes * 2 * (tp - 1) / tp)
        scaled.append(op)
    times = tuple(time_op(op, hw, eff) for op in scaled)
    total = sum(t.seconds for t in times)
    bound = _dominant(times)
    return PhaseEstimate(
        seconds=total,
        flops=sum(o.flops * o.count for o in scaled),
        bytes=sum(o.bytes * o.count for o in scaled if o.kind != "allreduce"),
        ops=times,
        bound=bound,
    )


def prefill_phase(
    config: ModelConfig, scheme: SchemeLike, workload: Workload, hw: Hardware, eff: Efficiency = ROOFLINE
) -> PhaseEstimate:
    """The prefill of `workload.batch` prompts of `workload.prompt` tokens."""
    ops = step_ops(config, scheme, workload.batch, workload.prompt, 0, prefill=True, tp=workload.tp)
    return _phase(ops, hw, eff, workload.tp)


def decode_phase(
    config: ModelConfig,
    scheme: SchemeLike,
    workload: Workload,
    hw: Hardware,
    eff: Efficiency = ROOFLINE,
    new_tokens: int = 1,
) -> PhaseEstimate:
    """One decode (or verification) forward of `new_tokens` positions per sequence at the decode context."""
    kv = workload.kv_positions(workload.decode_context)
    ops = step_ops(config, scheme, workload.batch, new_tokens, kv, prefill=False, tp=workload.tp)
    return _phase(ops, hw, eff, workload.tp)


def _combine(a: PhaseEstimate, b: PhaseEstimate, b_times: float) -> PhaseEstimate:
    """a + b_times * b (used for draft steps around a verification)."""
    k = b_times
    ops = a.ops + tuple(
        OpTime(
            t.op,
            t.seconds * k,
            t.memory_s * k,
            t.compute_s * k,
            t.dequant_s * k,
            t.launch_s * k,
            t.bound,
            t.body_bound,
        )
        for t in b.ops
    )
    total = a.seconds + k * b.seconds
    bound = _dominant(ops) if ops != a.ops else a.bound
    return PhaseEstimate(total, a.flops + k * b.flops, a.bytes + k * b.bytes, ops, bound)


def estimate(
    config: ModelConfig,
    scheme: SchemeLike | str,
    workload: Workload,
    hardware: Hardware,
    efficiency: Efficiency = ROOFLINE,
) -> Estimate:
    """Predict TTFT, TPOT, throughput, memory fit, $ per million tokens and J per token."""
    scheme = resolve_scheme(scheme)
    w = workload
    notes: list[str] = []
    if w.tp > 1 and hardware.interconnect_GBps is None:
        raise TricoError(
            f"{hardware.name} has no interconnect figure: tensor parallelism (tp={w.tp}) cannot be modelled"
        )
    if w.max_positions > config.max_seq_len:
        notes.append(f"context {w.max_positions} exceeds {config.name}'s max_seq_len {config.max_seq_len}")

    prefill = prefill_phase(config, scheme, w, hardware, efficiency)
    draft_GB = 0.0
    if w.spec is None:
        decode = decode_phase(config, scheme, w, hardware, efficiency)
        tokens_per_step = 1.0
    else:
        verify = decode_phase(config, scheme, w, hardware, efficiency, new_tokens=w.spec.draft_len + 1)
        if w.spec.draft_model is not None:
            draft_cfg = w.spec.draft_model
            draft_w = Workload(
                batch=w.batch, prompt=w.prompt, new_tokens=w.new_tokens, context=w.context, tp=w.tp
            )
            draft_step = decode_phase(draft_cfg, scheme, draft_w, hardware, efficiency)
            draft_GB = (
                sum(weight_bytes(draft_cfg, scheme, w.tp).values())
                + kv_cache_bytes(draft_cfg, scheme, w.batch, w.max_positions, w.tp)
            ) / GB
        else:
            one = decode_phase(config, scheme, w, hardware, efficiency)
            draft_step = PhaseEstimate(one.seconds * w.spec.draft_cost, 0.0, 0.0, (), one.bound)
        decode = _combine(verify, draft_step, float(w.spec.draft_len))
        tokens_per_step = w.spec.tokens_per_step

    tpot = decode.seconds / tokens_per_step
    decode_tok_s = w.batch / tpot
    e2e_tok_s = w.batch * w.new_tokens / (prefill.seconds + w.new_tokens * tpot)

    kept = w.prompt * w.kv_keep + w.new_tokens
    memory = MemoryBreakdown(
        weights_GB=sum(weight_bytes(config, scheme, w.tp).values()) / GB,
        # SnapKV compresses after prefill, so the full prompt's cache exists during prefill.
        kv_cache_GB=kv_cache_bytes(config, scheme, w.batch, max(kept, w.prompt), w.tp) / GB,
        activations_GB=activation_bytes(config, w.batch, w.prompt, w.tp) / GB,
        draft_GB=draft_GB,
        reserve_GB=w.reserve_GB,
        capacity_GB=hardware.memory_GB,
    )
    if hardware.price_per_hour_usd is None:
        notes.append(f"{hardware.name} has no price: $/M tokens not computed")
    if hardware.tdp_W is None:
        notes.append(f"{hardware.name} has no TDP figure: J/token not computed")
    return Estimate(
        model=config.name,
        scheme=scheme.name,
        hardware=hardware.name,
        workload=w,
        prefill=prefill,
        decode=decode,
        ttft_s=prefill.seconds,
        tpot_s=tpot,
        decode_tok_s=decode_tok_s,
        e2e_tok_s=e2e_tok_s,
        memory=memory,
        usd_per_Mtok=cost.usd_per_million_tokens(hardware.price_per_hour_usd, w.tp, e2e_tok_s),
        J_per_token=cost.joules_per_token(hardware.tdp_W, w.tp, e2e_tok_s),
        efficiency=efficiency.source,
        notes=tuple(notes),
    )


def decode_crossover_batch(
    config: ModelConfig,
    scheme: SchemeLike | str,
    hardware: Hardware,
    efficiency: Efficiency = ROOFLINE,
    context: int = 128,
    max_batch: int = 1 << 14,
) -> int | None:
    """Smallest batch at which the decode step's linear layers become compute-bound (None if never)."""
    scheme = resolve_scheme(scheme)

    def compute_bound(b: int) -> bool:
        w = Workload(batch=b, prompt=context, new_tokens=1, context=context)
        step = decode_phase(config, scheme, w, hardware, efficiency)
        lin = [t for t in step.ops if t.op.kind == "linear" and t.op.name != "lm_head"]
        return sum(t.compute_s + t.dequant_s for t in lin) >= sum(t.memory_s for t in lin)

    if not compute_bound(max_batch):
        return None
    lo, hi = 1, max_batch
    while lo < hi:
        mid = (lo + hi) // 2
        if compute_bound(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
