"""Compiler passes over the graph IR, registered by name and run as ordered flows (like hls4ml's flows)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from trico.errors import TricoError
from trico.hls.ir import Graph, Node, TensorInfo


@dataclass(frozen=True)
class HlsOptions:
    """Knobs of one design point (what DSE enumerates)."""

    precision: str = "float"
    """'float', 'fixed' (ap_fixed per tensor from calibration) or a uniform 'ap_fixed<W,I>'."""
    unroll: int = 8
    """Mat-vec lanes: weights decoded and multiplied per cycle per projection (>= 1)."""
    noise_bits: int = 10
    """Fixed point: quantization step <= (median |value|) * 2^-noise_bits for every tensor."""
    max_ctx: int = 128
    """KV-cache rows per layer on the external memory (longest context the design serves)."""

    def __post_init__(self) -> None:
        if self.unroll < 1:
            raise TricoError(f"unroll must be >= 1, got {self.unroll}")
        if self.precision not in ("float", "fixed") and not _UNIFORM.fullmatch(self.precision):
            raise TricoError(
                f"unknown precision {self.precision!r}: use 'float', 'fixed' or 'ap_fixed<W,I>' (e.g. ap_fixed<18,8>)"
            )
        if self.max_ctx < 1:
            raise TricoError(f"max_ctx must be >= 1, got {self.max_ctx}")


_UNIFORM = re.compile(r"ap_fixed<(\d+),\s*(-?\d+)>")
PassFn = Callable[[Graph, HlsOptions], None]
PASSES: dict[str, PassFn] = {}
"""Every pass by name."""


def register_pass(name: str) -> Callable[[PassFn], PassFn]:
    """Decorator adding a pass to PASSES."""

    def deco(fn: PassFn) -> PassFn:
        PASSES[name] = fn
        return fn

    return deco


def run_flow(graph: Graph, flow: list[str], opts: HlsOptions) -> Graph:
    """Apply the named passes in order; the graph records which ran."""
    for name in flow:
        if name not in PASSES:
            raise TricoError(f"unknown HLS pass {name!r}; known: {', '.join(PASSES)}")
        PASSES[name](graph, opts)
        graph.validate()
        graph.meta.setdefault("passes", []).append(name)
    return graph


def _remove(graph: Graph, node: Node) -> None:
    graph.nodes.remove(node)
    graph.tensors.pop(node.output, None)


@register_pass("fold_layout")
def fold_layout(graph: Graph, opts: HlsOptions) -> None:
    """Drop view/reshape/transpose nodes: in a one-token step they keep the element order (checked in the frontend)."""
    for node in [n for n in graph.nodes if n.op == "alias"]:
        graph.replace_uses(node.output, node.inputs[0])
        _remove(graph, node)


@register_pass("fuse_silu_gate")
def fuse_silu_gate(graph: Graph, opts: HlsOptions) -> None:
    """mul(silu(g), u) -> silu_gate(g, u) when the silu output feeds only that multiply."""
    for mul in [n for n in graph.nodes if n.op == "mul"]:
        for i, src in enumerate(mul.inputs):
            silu = graph.producer(src)
            if silu is not None and silu.op == "silu" and len(graph.consumers(src)) == 1:
                mul.op, mul.inputs = "silu_gate", [silu.inputs[0], mul.inputs[1 - i]]
                _remove(graph, silu)
                break


@register_pass("fuse_residual_add")
def fuse_residual_add(graph: Graph, opts: HlsOptions) -> None:
    """add(r, linear(x)) -> linear_add(x, r): the residual joins the mat-vec's output loop."""
    for add in [n for n in graph.nodes if n.op == "add"]:
        for i, src in enumerate(add.inputs):
            lin = graph.producer(src)
            if lin is not None and lin.op == "linear" and len(graph.consumers(src)) == 1:
                residual = add.inputs[1 - i]
                lin.op, lin.inputs = "linear_add", [lin.inputs[0], residual]
                # The fused stage writes the sum: it keeps the add's tensor (and its calibrated range).
                graph.tensors.pop(lin.output)
                lin.output = add.output
                lin.name = f"{lin.name}_res"
                # The fused node must run after the residual is produced: it takes the add's slot.
                graph.nodes[graph.nodes.index(add)] = lin
                graph.nodes.remove(lin)  # the first occurrence: its old slot, before the add
                break


def _index_after(graph: Graph, tensors: list[str]) -> int:
    last = -1
    for t in tensors:
        p = graph.producer(t)
        if p is not None:
            last = max(last, graph.nodes.index(p))
    return last + 1


# --- precision ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fixed:
    """An ap_fixed<W,I> type: W bits, I of them integer (sign included)."""

    w: int
    i: int

    @property
    def f(self) -> int:
        """Fractional bits."""
        return self.w - self.i

    def ctype(self, saturate: bool = True) -> str:
        """The C++ spelling (tensors round and saturate; accumulators keep the cheap defaults)."""
        return (
            f"ap_fixed<{self.w}, {self.i}, AP_RND, AP_SAT>" if saturate else f"ap_fixed<{self.w}, {self.i}>"
        )


def fixed_for(absmax: float, typical: float, noise_bits: int) -> Fixed:
    """Integer bits cover 2x the calibrated peak; fractional bits put the step below typical * 2^-noise_bits.

    `typical` is the median magnitude, not the rms: residual streams carry a few huge outlier channels
    that inflate the rms, and a step sized from it would drown the ordinary channels.
    """
    i = max(1, math.ceil(math.log2(max(absmax, 1e-12) * 2.0)) + 1)
    f = max(1, math.ceil(-math.log2(max(typical, 1e-12))) + noise_bits) if typical > 0 else 8
    return Fixed(i + f, i)


def _wider(a: Fixed, b: Fixed) -> Fixed:
    i, f = max(a.i, b.i), max(a.f, b.f)
    return Fixed(i + f, i)


def parse_fixed(text: str) -> Fixed:
    """'ap_fixed<W,I>' -> Fixed."""
    m = _UNIFORM.fullmatch(text.replace(" ", ""))
    if not m:
        raise TricoError(f"not an ap_fixed<W,I> type: {text!r}")
    return Fixed(int(m.group(1)), int(m.group(2)))


@register_pass("assign_precision")
def assign_precision(graph: Graph, opts: HlsOptions) -> None:
    """Give every tensor, accumulator and float weight a C++ type: float, or ap_fixed from calibration."""
    if opts.precision == "float":
        for t in graph.tensors.values():
            t.ctype = "float"
        for n in graph.nodes:
            n.attrs.update(acc="float", wtype="float", ctype_table="float")
        graph.meta["precision"] = {"mode": "float"}
        return
    uniform = None if opts.precision == "fixed" else parse_fixed(opts.precision)
    chosen: dict[str, Fixed] = {}
    for t in graph.tensors.values():
        chosen[t.name] = uniform or fixed_for(t.absmax, t.typical or t.rms, opts.noise_bits)
    # The layer engine feeds a layer's output back as the next layer's input: one residual-stream type.
    if "x" in chosen and uniform is None:
        chosen["x"] = chosen[graph.output] = _wider(chosen["x"], chosen[graph.output])
    # k and v share the KV cache's element type: the wider of the two in both directions.
    for att in [n for n in graph.nodes if n.op == "attention"]:
        kv = _wider(chosen[att.inputs[1]], chosen[att.inputs[2]])
        chosen[att.inputs[1]] = chosen[att.inputs[2]] = kv
        att.attrs["kv_type"] = kv.ctype()
    for name, fx in chosen.items():
        graph.tensors[name].ctype = fx.ctype()
    for n in graph.nodes:
        out = chosen[n.output]
        ins = [chosen[t] for t in n.inputs if t in chosen]
        if n.op in ("linear", "linear_add"):
            acc_i = out.i + 4
            if "acc_absmax" in n.attrs:  # code-domain partial sums measured in calibration, 4x headroom
                acc_i = max(acc_i, math.ceil(math.log2(max(n.attrs["acc_absmax"], 1e-12) * 4.0)) + 1)
            elif n.params["weight"].fmt != "float":  # no measurement (DSE stubs): codes reach ~2^8 / scale
                acc_i += 8
            acc = Fixed(acc_i + max(x.f for x in ins) + 8, acc_i)
            n.attrs["acc"] = acc.ctype(saturate=False)
            w = n.params["weight"]
            if w.fmt == "float":
                wfx = uniform or fixed_for(w.absmax, w.typical or w.rms, opts.noise_bits)
                n.attrs["wtype"] = wfx.ctype()
            else:
                n.attrs["wtype"] = "float"
        elif n.op == "rmsnorm":
            x = ins[0]
            n.attrs["acc"] = Fixed(
                2 * x.i + math.ceil(math.log2(graph.tensors[n.inputs[0]].size)) + min(2 * x.f, 24),
                2 * x.i + math.ceil(math.log2(graph.tensors[n.inputs[0]].size)),
            ).ctype(saturate=False)
        elif n.op == "attention":
            si = max(1, math.ceil(math.log2(max(n.attrs.get("score_absmax", 1.0), 1.0) * 2.0)) + 1)
            i = max(si, chosen[n.inputs[2]].i + 1)
            n.attrs["acc"] = Fixed(i + 20, i).ctype(saturate=False)
        elif n.op == "rope":
            n.attrs["ctype_table"] = Fixed(18, 2).ctype()
    graph.meta["precision"] = {
        "mode": opts.precision,
        "noise_bits": opts.noise_bits,
        "tensors": {k: f"ap_fixed<{v.w},{v.i}>" for k, v in chosen.items()},
    }


# --- parallelism and dataflow ---------------------------------------------------------------------


def _largest_divisor_at_most(n: int, cap: int) -> int:
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


@register_pass("assign_parallelism")
def assign_parallelism(graph: Graph, opts: HlsOptions) -> None:
    """Unroll factor per mat-vec (a divisor of its group) with the matching cyclic partition of its input,
    and lanes along head_dim for attention."""
    for n in graph.nodes:
        if n.op in ("linear", "linear_add"):
            w = n.params["weight"]
            u = _largest_divisor_at_most(w.group, opts.unroll)
            n.attrs["unroll"] = u
            n.attrs["partition"] = u
            src = graph.tensors[n.inputs[0]]
            src.partition = max(src.partition, u)
        elif n.op == "attention":  # lanes along head_dim in the q.k and p.v loops
            n.attrs["unroll"] = _largest_divisor_at_most(n.attrs["head_dim"], opts.unroll)
        else:
            n.attrs.setdefault("unroll", 1)


@register_pass("insert_forks")
def insert_forks(graph: Graph, opts: HlsOptions) -> None:
    """A DATAFLOW region needs one consumer per buffer: tensors read by k > 1 stages get a chain of copies."""
    for name in [*graph.inputs, *[n.output for n in graph.nodes]]:
        users = graph.consumers(name)
        if len(users) < 2 or name in ("cos", "sin"):  # rope tables are read from memory, not a buffer
            continue
        src = name
        for j, user in enumerate(users[:-1]):
            a, b = f"{name}_c{j}", f"{name}_r{j}"
            info = graph.tensors[name]
            for t in (a, b):
                graph.tensors[t] = TensorInfo(t, info.size, info.absmax, info.rms, info.typical, info.ctype)
            fork = Node(f"fork_{name}_{j}", "fork", [src], a, attrs={"second": b})
            graph.nodes.insert(_index_after(graph, [src]), fork)
            user.inputs = [a if t == name else t for t in user.inputs]
            src = b
        last = users[-1]
        last.inputs = [src if t == name else t for t in last.inputs]


# Inputs a stage reads exactly once, in order: a FIFO suffices; everything else needs a ping-pong buffer.
_READS_IN_ORDER: dict[str, tuple[int, ...]] = {
    "add": (0, 1),
    "silu_gate": (0, 1),
    "fork": (0,),
    "linear_add": (1,),
}
# Stages whose output is written once, in order.
_WRITES_IN_ORDER = {"add", "silu_gate", "fork", "linear", "linear_add", "rmsnorm", "attention"}


@register_pass("assign_streams")
def assign_streams(graph: Graph, opts: HlsOptions) -> None:
    """Mark each producer->consumer buffer as a FIFO stream or a ping-pong (PIPO) buffer, with its depth.

    A FIFO is shallow (depth 2) only when the consumer can drain it as it fills: all its other inputs
    are ready by the time this one is produced. A residual that bypasses the attention or MLP block
    waits for the whole block, so its FIFO must hold the whole vector or the region deadlocks.
    """
    order = {t: i for i, n in enumerate(graph.nodes) for t in n.outputs}
    for n in graph.nodes:
        for idx, t in enumerate(n.inputs):
            if t in graph.inputs or t not in graph.tensors:
                continue
            prod = graph.producer(t)
            info = graph.tensors[t]
            in_order = (
                idx in _READS_IN_ORDER.get(n.op, ()) and prod is not None and prod.op in _WRITES_IN_ORDER
            )
            if not in_order:
                info.stream, info.depth = "pipo", 2
                continue
            others_ready = all(order.get(o, -1) <= order[t] for o in n.inputs if o != t)
            info.stream, info.depth = "fifo", 2 if others_ready else info.size


LAYER_FLOW: list[str] = [
    "fold_layout",
    "fuse_silu_gate",
    "fuse_residual_add",
    "assign_precision",
    "insert_forks",
    "assign_parallelism",
    "assign_streams",
]
"""The passes `compile` runs, in order."""
