"""Frontend: trace trico's Llama decoder layer (one decode step) with torch.fx into the graph IR.

The layer's attention goes through `cache.attend(...)`; for tracing, the cache is a shim whose
`attend` calls a leaf module (`KVAttention`), so attention over the KV cache becomes one IR node.
Every other fx node maps to an IR op through the registries below; anything else is refused by name.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import fx, nn

from trico.errors import TricoError
from trico.hls.ir import Graph, LinearWeights, Node, TensorInfo
from trico.models.llama import DecoderLayer, RMSNorm, apply_rope


@dataclass
class DecodeInputs:
    """What one decode step of one layer reads: hidden state, position and that layer's KV cache."""

    x: torch.Tensor
    """Layer input [1, 1, dim]."""
    pos: int
    """Position of the token being decoded (the cache holds positions 0..pos-1)."""
    k_cache: torch.Tensor
    """Keys of this layer [n_kv_heads, max_ctx, head_dim]; rows >= pos are ignored."""
    v_cache: torch.Tensor
    """Values of this layer, same shape."""
    cos: torch.Tensor
    """RoPE table row of pos [head_dim]."""
    sin: torch.Tensor
    """RoPE table row of pos [head_dim]."""


class KVAttention(nn.Module):
    """fx leaf: write k, v at pos into the cache and attend q over positions 0..pos (batch 1, one token)."""

    def __init__(self) -> None:
        super().__init__()
        self.k_cache: torch.Tensor | None = None
        self.v_cache: torch.Tensor | None = None
        self.score_absmax = 0.0

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, input_pos: torch.Tensor
    ) -> torch.Tensor:
        """q [1, H, 1, D], k/v [1, Hkv, 1, D] -> [1, H, 1, D]."""
        pos = int(input_pos[0])
        keys = torch.cat([self.k_cache[:, :pos].float(), k[0].float()], dim=1)  # [Hkv, pos+1, D]
        values = torch.cat([self.v_cache[:, :pos].float(), v[0].float()], dim=1)
        rep = q.shape[1] // keys.shape[0]
        keys, values = keys.repeat_interleave(rep, 0), values.repeat_interleave(rep, 0)
        raw = torch.einsum("hd,htd->ht", q[0, :, 0].float(), keys)
        self.score_absmax = max(self.score_absmax, float(raw.detach().abs().max()))
        p = torch.softmax(raw / q.shape[-1] ** 0.5, dim=-1)
        return torch.einsum("ht,htd->hd", p, values)[None, :, None, :].to(q.dtype)


class _CacheShim:
    """Stands in for the KV cache during tracing: `attend` becomes a call of the KVAttention leaf."""

    def __init__(self, leaf: KVAttention) -> None:
        self.leaf = leaf

    def attend(self, layer: int, q, k, v, input_pos):  # noqa: ANN001, ANN201 - KVCacheLike signature
        return self.leaf(q, k, v, input_pos)


class DecodeStep(nn.Module):
    """One decoder layer, one token, with its attention routed through a KVAttention leaf."""

    def __init__(self, layer: DecoderLayer) -> None:
        super().__init__()
        self.layer = layer
        self.kv = KVAttention()

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, input_pos: torch.Tensor):  # noqa: ANN201
        """x [1, 1, dim], cos/sin [1, head_dim], input_pos [1]."""
        return self.layer(x, cos, sin, input_pos, _CacheShim(self.kv))


def _leaf_types() -> tuple[type, ...]:
    types: list[type] = [nn.Linear, RMSNorm, KVAttention]
    try:
        from trico.quant.qlinear import QLinear
    except ImportError:  # quantization is optional for the float path
        pass
    else:
        types.append(QLinear)
    return tuple(types)


class _Tracer(fx.Tracer):
    def __init__(self) -> None:
        super().__init__(autowrap_functions=(apply_rope,))

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _leaf_types()) or super().is_leaf_module(m, qualname)


def trace(step: DecodeStep) -> fx.GraphModule:
    """Symbolically trace a decode step into an fx GraphModule."""
    graph = _Tracer().trace(step)
    return fx.GraphModule(step, graph)


class _Recorder(fx.Interpreter):
    """Runs the traced graph and keeps every node's value."""

    def run_node(self, n: fx.Node):  # noqa: ANN201 - fx signature
        out = super().run_node(n)
        self.values[n.name] = out
        return out

    def record(self, *args: object) -> dict:
        self.values: dict = {}
        self.run(*args)
        return self.values


def _step_args(sample: DecodeInputs) -> tuple:
    return (sample.x.float(), sample.cos[None].float(), sample.sin[None].float(), torch.tensor([sample.pos]))


def run_samples(gm: fx.GraphModule, samples: list[DecodeInputs]) -> list[dict]:
    """Every node's value for each sample (calibration and layout checks)."""
    rec = _Recorder(gm)
    gm.kv.score_absmax = 0.0
    out = []
    with torch.no_grad():
        for s in samples:
            gm.kv.k_cache, gm.kv.v_cache = s.k_cache, s.v_cache
            out.append(rec.record(*_step_args(s)))
    return out


def linear_weights(mod: nn.Module) -> LinearWeights:
    """A projection's weights in the layout the C++ library reads; unsupported formats are refused."""
    if isinstance(mod, nn.Linear):
        w = mod.weight.detach().float().cpu().numpy()
        return LinearWeights(
            "float",
            w.shape[0],
            w.shape[1],
            w.shape[1],
            dense=np.ascontiguousarray(w),
            absmax=float(np.abs(w).max()),
            rms=float(np.sqrt(np.mean(w.astype(np.float64) ** 2))),
            typical=float(np.median(np.abs(w))),
        )
    fmt = getattr(mod, "fmt", None)
    if fmt not in ("int8", "uint4", "tern2"):
        raise TricoError(
            f"weight format {fmt!r} of {type(mod).__name__} is not supported by the HLS library "
            "(float, int8, uint4, tern2)"
        )
    n, k = mod.out_features, mod.in_features
    dq = mod.dequantize().detach().float().cpu()
    scales = mod.scales.detach().float().cpu()
    if scales.shape[0] == 1 and n > 1:  # per-tensor scale (ternary): one per row keeps one layout
        scales = scales.expand(n, scales.shape[1])
    group = k // scales.shape[1]
    mins = None if mod.mins is None else mod.mins.detach().float().cpu().numpy()
    codes = mod.qweight.detach().cpu().contiguous().view(torch.uint8).numpy()
    return LinearWeights(
        fmt,
        n,
        k,
        group,
        symmetric=bool(mod.symmetric),
        codes=np.ascontiguousarray(codes),
        scales=np.ascontiguousarray(scales.numpy()),
        mins=mins,
        absmax=float(dq.abs().max()),
        rms=float(dq.double().pow(2).mean().sqrt()),
        typical=float(dq.abs().median()),
    )


def code_matrix(mod: nn.Module) -> tuple[torch.Tensor, int]:
    """Signed integer codes [N, K] a quantized layer multiplies by (or the float weights) and its group."""
    if isinstance(mod, nn.Linear):
        return mod.weight.detach().float(), mod.in_features
    c = mod.codes().float()
    if mod.fmt == "uint4" and mod.symmetric:
        c = c - 8
    elif mod.fmt == "tern2":
        c = c - 1
    return c, linear_weights(mod).group


def _code_dot_absmax(mod: nn.Module, xs: torch.Tensor) -> float:
    codes, g = code_matrix(mod)
    n, k = codes.shape
    parts = torch.einsum(
        "sjg,njg->snj", xs.reshape(-1, k // g, g).double(), codes.reshape(n, k // g, g).double()
    )
    return float(parts.abs().max())


# --- fx node -> IR op registries ------------------------------------------------------------------

_MODULE_OPS: dict[str, str] = {
    "Linear": "linear",
    "QLinear": "linear",
    "RMSNorm": "rmsnorm",
    "KVAttention": "attention",
}
_FUNCTION_OPS: dict[Callable, str] = {
    operator.add: "add",
    operator.mul: "mul",
    torch.add: "add",
    torch.mul: "mul",
    F.silu: "silu",
    apply_rope: "rope",
}
_LAYOUT_METHODS = {"view", "reshape", "transpose", "contiguous", "float", "to", "flatten"}
_ELEMENTWISE_METHODS: dict[str, str] = {"add": "add", "mul": "mul"}


def _target_name(n: fx.Node) -> str:
    t = n.target
    if isinstance(t, str):
        return f"{n.op} {t}"
    return f"{getattr(t, '__module__', '')}.{getattr(t, '__name__', repr(t))}".lstrip(".")


def to_ir(gm: fx.GraphModule, samples: list[DecodeInputs], max_ctx: int) -> Graph:
    """Convert a traced decode step into the IR, with calibration statistics from the samples."""
    values = run_samples(gm, samples)
    first = values[0]
    modules = dict(gm.named_modules())
    nodes: list[Node] = []
    tensors: dict[str, TensorInfo] = {}
    inputs: list[str] = []
    output = ""

    def tensor_args(n: fx.Node) -> list[str]:
        return [
            a.name for a in n.args if isinstance(a, fx.Node) and isinstance(first.get(a.name), torch.Tensor)
        ]

    for n in gm.graph.nodes:
        val = first.get(n.name)
        if n.op == "placeholder":
            if n.name != "input_pos":
                inputs.append(n.name)
                tensors[n.name] = TensorInfo(n.name, int(val.numel()))
            continue
        if n.op == "output":
            output = n.args[0].name
            continue
        if not isinstance(val, torch.Tensor):
            continue  # shape arithmetic (x.shape, b, t): compile-time constants in a decode step
        if n.op == "call_module":
            mod = modules[n.target]
            op = _MODULE_OPS.get(type(mod).__name__)
            if op is None:
                raise TricoError(
                    f"unsupported operator: module {type(mod).__name__} at node {n.name} ({n.target})"
                )
            node = Node(n.name, op, tensor_args(n), n.name, attrs={"module": n.target.removeprefix("layer.")})
            if op == "linear":
                w = linear_weights(mod)
                node.params["weight"] = w
                node.attrs.update(n_out=w.n, k_in=w.k)
            elif op == "rmsnorm":
                node.params["weight"] = mod.weight.detach().float().cpu().numpy()
                node.attrs["eps"] = float(mod.eps)
            else:
                q, k = first[n.args[0].name], first[n.args[1].name]
                node.inputs = node.inputs[:3]  # q, k, v (input_pos is the top-level pos argument)
                node.attrs.update(
                    n_heads=q.shape[1], n_kv_heads=k.shape[1], head_dim=q.shape[-1], max_ctx=max_ctx
                )
                node.attrs["score_absmax"] = float(gm.kv.score_absmax)
        elif n.op == "call_function" and n.target in _FUNCTION_OPS:
            op = _FUNCTION_OPS[n.target]
            if op in ("add", "mul") and len(tensor_args(n)) != 2:
                raise TricoError(f"unsupported operator: {op} with a scalar operand at node {n.name}")
            node = Node(n.name, op, tensor_args(n), n.name)
            if op == "rope":
                node.attrs.update(n_heads=val.shape[1], head_dim=val.shape[-1])
        elif n.op == "call_method" and (n.target in _LAYOUT_METHODS or n.target in _ELEMENTWISE_METHODS):
            if n.target in _ELEMENTWISE_METHODS:
                node = Node(n.name, _ELEMENTWISE_METHODS[n.target], tensor_args(n), n.name)
            else:
                src = first[n.args[0].name]
                # In a one-token step these views keep element order; check it rather than assume it.
                if not torch.equal(src.reshape(-1).float(), val.contiguous().reshape(-1).float()):
                    raise TricoError(f"unsupported operator: {n.target} at node {n.name} reorders elements")
                node = Node(n.name, "alias", tensor_args(n)[:1], n.name)
        else:
            raise TricoError(f"unsupported operator: {_target_name(n)} at node {n.name}")
        nodes.append(node)
        tensors[n.name] = TensorInfo(n.name, int(val.numel()))

    # The accumulator of a quantized mat-vec sums x * code per group before the scale is applied, so
    # its range is that of those code-domain partial sums, measured here on the calibration inputs.
    for node in nodes:
        if node.op == "linear":
            xs = torch.stack([v[node.inputs[0]].detach().float().reshape(-1) for v in values])
            node.attrs["acc_absmax"] = _code_dot_absmax(modules[f"layer.{node.attrs['module']}"], xs)
    for name, t in tensors.items():
        vals = [v[name].detach().float() for v in values]
        t.absmax = max(float(v.abs().max()) for v in vals)
        t.rms = float(np.sqrt(np.mean([float(v.pow(2).mean()) for v in vals])))
        t.typical = float(torch.cat([v.reshape(-1) for v in vals]).abs().median())
    # Keys and values already in the cache must fit the cache's type too (early tokens can be larger).
    by_output = {n.output: n for n in nodes}

    def source(t: str) -> str:
        while t in by_output and by_output[t].op == "alias":
            t = by_output[t].inputs[0]
        return t

    for att in (n for n in nodes if n.op == "attention"):
        for idx, attr in ((1, "k_cache"), (2, "v_cache")):
            peak = max(float(getattr(s, attr)[:, : s.pos].abs().max()) if s.pos else 0.0 for s in samples)
            t = tensors[source(att.inputs[idx])]
            t.absmax = max(t.absmax, peak)
    graph = Graph(inputs=inputs, output=output, nodes=nodes, tensors=tensors)
    graph.validate()
    return graph
