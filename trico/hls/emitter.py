"""Emitter: IR -> a Vitis-HLS-style top level that calls the C++ library, a testbench and weight files.

Each IR op has a small function writing one library call (the hls4ml templates pattern); the top level
streams one layer's weights at a time from external memory and loops over layers (the layer engine).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from torch import nn

from trico.errors import TricoError
from trico.hls.frontend import linear_weights
from trico.hls.ir import Graph, LinearWeights, Node

ALIGN = 16
"""Regions start on 16-element (64-byte for floats) boundaries, one AXI beat."""

FORMAT_TRAITS: dict[str, Callable[[LinearWeights, str], str]] = {
    "float": lambda w, wtype: f"trico::fmt_float<{wtype} >",
    "int8": lambda w, wtype: "trico::fmt_int8",
    "uint4": lambda w, wtype: f"trico::fmt_uint4<{'true' if w.symmetric else 'false'}>",
    "tern2": lambda w, wtype: "trico::fmt_tern2",
}
"""C++ format trait of each weight format (trico/hls/lib/trico_weights.h)."""


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Region:
    """Where one stage's constants live: byte offset in wmem, float offsets in pmem (-1: absent)."""

    codes: int = -1
    dense: int = -1
    scales: int = -1
    mins: int = -1
    vector: int = -1


@dataclass
class MemoryMap:
    """Layout of the two weight memories: per-layer strides plus global tables after the layers."""

    regions: dict[str, Region] = field(default_factory=dict)
    w_stride: int = 0
    p_stride: int = 0
    globals_w: dict[str, int] = field(default_factory=dict)
    globals_p: dict[str, int] = field(default_factory=dict)
    w_total: int = 0
    p_total: int = 0


def _linear_sizes(w: LinearWeights) -> dict[str, int]:
    groups = w.n * (w.k // w.group)
    return {
        "codes": 0 if w.fmt == "float" else int(np.asarray(w.codes).size),
        "dense": w.n * w.k if w.fmt == "float" else 0,
        "scales": 0 if w.fmt == "float" else groups,
        "mins": groups if (w.fmt == "uint4" and not w.symmetric) else 0,
    }


def plan_layer(graph: Graph) -> MemoryMap:
    """Offsets of every stage's weights within one layer's slice of wmem (bytes) and pmem (floats)."""
    mm = MemoryMap()
    wo = po = 0
    for n in graph.nodes:
        r = Region()
        if n.op in ("linear", "linear_add"):
            for kind, size in _linear_sizes(n.params["weight"]).items():
                if size == 0:
                    continue
                if kind == "codes":
                    r.codes, wo = wo, _align(wo + size)
                else:
                    setattr(r, kind, po)
                    po = _align(po + size)
        elif n.op == "rmsnorm":
            r.vector, po = po, _align(po + len(n.params["weight"]))
        mm.regions[n.name] = r
    mm.w_stride, mm.p_stride = _align(wo), _align(po)
    return mm


def pack_layer(graph: Graph, mm: MemoryMap, layer: nn.Module) -> tuple[np.ndarray, np.ndarray]:
    """One layer's wmem bytes and pmem floats, read from the layer's own modules through the node paths."""
    wbuf = np.zeros(mm.w_stride, dtype=np.uint8)
    pbuf = np.zeros(mm.p_stride, dtype=np.float32)
    for n in graph.nodes:
        r = mm.regions.get(n.name)
        if n.op in ("linear", "linear_add"):
            w = linear_weights(layer.get_submodule(n.attrs["module"]))
            _put_linear(w, r, wbuf, pbuf)
        elif n.op == "rmsnorm":
            v = layer.get_submodule(n.attrs["module"]).weight.detach().float().cpu().numpy()
            pbuf[r.vector : r.vector + v.size] = v
    return wbuf, pbuf


def _put_linear(w: LinearWeights, r: Region, wbuf: np.ndarray, pbuf: np.ndarray) -> None:
    if w.fmt == "float":
        pbuf[r.dense : r.dense + w.n * w.k] = w.dense.reshape(-1)
        return
    codes = np.asarray(w.codes, dtype=np.uint8).reshape(-1)
    wbuf[r.codes : r.codes + codes.size] = codes
    pbuf[r.scales : r.scales + w.scales.size] = w.scales.reshape(-1)
    if r.mins >= 0:
        pbuf[r.mins : r.mins + w.mins.size] = w.mins.reshape(-1)


def _ptr(base: str, off: int) -> str:
    return "0" if off < 0 else f"{base} + {off}"


# --- one library call per IR op ------------------------------------------------------------------

EmitFn = Callable[[Node, Graph, Region, "dict[str, str]"], str]
EMITTERS: dict[str, EmitFn] = {}


def emits(op: str) -> Callable[[EmitFn], EmitFn]:
    """Decorator registering the call template of one IR op."""

    def deco(fn: EmitFn) -> EmitFn:
        EMITTERS[op] = fn
        return fn

    return deco


def _t(graph: Graph, name: str) -> str:
    return f"t_{name}"


def _linear_call(n: Node, g: Graph, r: Region, v: dict[str, str]) -> tuple[str, str]:
    w: LinearWeights = n.params["weight"]
    fmt = FORMAT_TRAITS[w.fmt](w, n.attrs.get("wtype", "float"))
    args = (
        f"{_ptr('wmem', r.codes)}, {_ptr('pmem', r.dense)}, {_ptr('pmem', r.scales)}, {_ptr('pmem', r.mins)}"
    )
    return fmt, args


@emits("linear")
def _emit_linear(n: Node, g: Graph, r: Region, v: dict[str, str]) -> str:
    w = n.params["weight"]
    fmt, args = _linear_call(n, g, r, v)
    x, y = n.inputs[0], n.output
    return (
        f"trico::matvec<{fmt}, {_t(g, x)}, {_t(g, y)}, {n.attrs['acc']}, {w.n}, {w.k}, {w.group}, "
        f"{n.attrs['unroll']}>({v[x]}, {args}, {v[y]});"
    )


@emits("linear_add")
def _emit_linear_add(n: Node, g: Graph, r: Region, v: dict[str, str]) -> str:
    w = n.params["weight"]
    fmt, args = _linear_call(n, g, r, v)
    x, res, y = n.inputs[0], n.inputs[1], n.output
    return (
        f"trico::matvec_add<{fmt}, {_t(g, x)}, {_t(g, res)}, {_t(g, y)}, {n.attrs['acc']}, {w.n}, {w.k}, "
        f"{w.group}, {n.attrs['unroll']}>({v[x]}, {args}, {v[res]}, {v[y]});"
    )


@emits("rmsnorm")
def _emit_rmsnorm(n: Node, g: Graph, r: Region, v: dict[str, str]) -> str:
    x, y = n.inputs[0], n.output
    return (
        f"trico::rmsnorm<{_t(g, x)}, {_t(g, y)}, {n.attrs['acc']}, {g.tensors[x].size}>"
        f"({v[x]}, pmem + {r.vector}, {n.attrs['eps']!r}f, {v[y]});"
    )


@emits("rope")
def _emit_rope(n: Node, g: Graph, r: Region, v: dict[str, str]) -> str:
    x, y = n.inputs[0], n.output
    return (
        f"trico::rope<{_t(g, x)}, {_t(g, y)}, {n.attrs['ctype_table']}, {n.attrs['n_heads']}, "
        f"{n.attrs['head_dim']}>({v[x]}, cos_row, sin_row, {v[y]});"
    )


@emits("attention")
def _emit_attention(n: Node, g: Graph, r: Region, v: dict[str, str]) -> str:
    q, k, val = n.inputs
    a = n.attrs
    return (
        f"trico::attention<{_t(g, q)}, kv_t, {_t(g, n.output)}, {a['acc']}, {a['n_heads']}, {a['n_kv_heads']}, "
        f"{a['head_dim']}, MAX_CTX, {a.get('unroll', 1)}>({v[q]}, {v[k]}, {v[val]}, kcache, vcache, pos, "
        f"{v[n.output]});"
    )


def _elementwise(fn: str) -> EmitFn:
    def emit(n: Node, g: Graph, r: Region, v: dict[str, str]) -> str:
        types = ", ".join(_t(g, t) for t in [*n.inputs, n.output])
        args = ", ".join(v[t] for t in [*n.inputs, n.output])
        return f"trico::{fn}<{types}, {g.tensors[n.output].size}>({args});"

    return emit


for _op, _fn in (("add", "add"), ("mul", "mul"), ("silu_gate", "silu_gate"), ("silu", "silu")):
    EMITTERS[_op] = _elementwise(_fn)


@emits("fork")
def _emit_fork(n: Node, g: Graph, r: Region, v: dict[str, str]) -> str:
    x = n.inputs[0]
    return f"trico::fork2<{_t(g, x)}, {g.tensors[x].size}>({v[x]}, {v[n.output]}, {v[n.attrs['second']]});"


# --- whole files ---------------------------------------------------------------------------------


def _kv_type(graph: Graph) -> str:
    att = next((n for n in graph.nodes if n.op == "attention"), None)
    if att is None:
        raise TricoError("the graph has no attention stage: not a decoder layer")
    return att.attrs.get("kv_type", "float")


def layer_function(graph: Graph, mm: MemoryMap) -> str:
    """The DATAFLOW function of one decoder layer (one token)."""
    names = {"x": "x", "cos": "cos_row", "sin": "sin_row", graph.output: "y"}
    lines = []
    for t in graph.tensors.values():
        lines.append(f"typedef {t.ctype} t_{t.name};")
    body = []
    for n in graph.nodes:
        for t in [n.output, *([n.attrs["second"]] if n.op == "fork" else [])]:
            if t in names:
                continue
            names[t] = t
            info = graph.tensors[t]
            body.append(f"    t_{t} {t}[{info.size}];")
            body.append(f"#pragma HLS STREAM variable = {t} type = {info.stream} depth = {info.depth}")
            if info.partition > 1:
                body.append(f"#pragma HLS ARRAY_PARTITION variable = {t} cyclic factor = {info.partition}")
    for n in graph.nodes:
        if n.op not in EMITTERS:
            raise TricoError(f"the emitter has no library call for op {n.op!r} (node {n.name})")
        body.append("    " + EMITTERS[n.op](n, graph, mm.regions.get(n.name, Region()), names))
    sig = (
        f"static void layer_step(const t_x x[DIM], t_{graph.output} y[DIM], const trico::wbyte_t *wmem, "
        "const float *pmem, kv_t *kcache, kv_t *vcache, const float *cos_row, const float *sin_row, int pos)"
    )
    return "\n".join([*lines, "", sig + " {", "#pragma HLS DATAFLOW", *body, "}"])


@dataclass
class HeadSpec:
    """Embedding, final norm and output projection around the layer loop (model designs)."""

    embedding: np.ndarray
    norm: np.ndarray
    norm_eps: float
    head: LinearWeights
    unroll: int


def plan_globals(mm: MemoryMap, n_layers: int, rope_len: int, head: HeadSpec | None) -> None:
    """Place the RoPE tables (and the embedding/head) after the layers' slices."""
    po, wo = n_layers * mm.p_stride, n_layers * mm.w_stride
    for name, size in [("rope_cos", rope_len), ("rope_sin", rope_len)]:
        mm.globals_p[name], po = po, _align(po + size)
    if head is not None:
        mm.globals_p["embed"], po = po, _align(po + head.embedding.size)
        mm.globals_p["final_norm"], po = po, _align(po + head.norm.size)
        sizes = _linear_sizes(head.head)
        for kind in ("dense", "scales", "mins"):
            if sizes[kind]:
                mm.globals_p[f"head_{kind}"], po = po, _align(po + sizes[kind])
        if sizes["codes"]:
            mm.globals_w["head_codes"], wo = wo, _align(wo + sizes["codes"])
    mm.w_total, mm.p_total = wo, po


def top_source(graph: Graph, mm: MemoryMap, head: HeadSpec | None) -> str:
    """top.cpp: layer function, the layer engine (and the token-level decode step for model designs)."""
    m = graph.meta
    consts = [
        f"static const int DIM = {m['dim']};",
        f"static const int HEAD_DIM = {m['head_dim']};",
        f"static const int MAX_CTX = {m['max_ctx']};",
        f"static const long W_STRIDE = {mm.w_stride};",
        f"static const long P_STRIDE = {mm.p_stride};",
        f"static const long KV_STRIDE = {m['n_kv_heads'] * m['max_ctx'] * m['head_dim']};",
        f"static const long ROPE_COS = {mm.globals_p['rope_cos']};",
        f"static const long ROPE_SIN = {mm.globals_p['rope_sin']};",
        f"typedef {_kv_type(graph)} kv_t;",
    ]
    out_t = f"t_{graph.output}"
    engine = f"""
// Layer engine: one layer's weights at a time from external memory, the same stages for every layer.
static void run_layers(t_x buf[DIM], const trico::wbyte_t *wmem, const float *pmem, kv_t *kcache, kv_t *vcache,
                       int pos, int n_layers) {{
layer_loop:
    for (int l = 0; l < n_layers; l++) {{
        {out_t} nxt[DIM];
        layer_step(buf, nxt, wmem + l * W_STRIDE, pmem + l * P_STRIDE, kcache + l * KV_STRIDE,
                   vcache + l * KV_STRIDE, pmem + ROPE_COS + (long)pos * HEAD_DIM,
                   pmem + ROPE_SIN + (long)pos * HEAD_DIM, pos);
    carry_loop:
        for (int i = 0; i < DIM; i++) {{
#pragma HLS PIPELINE II = 1
            buf[i] = t_x(trico::to_f(nxt[i]));
        }}
    }}
}}

extern "C" void trico_layers(const trico::wbyte_t *wmem, const float *pmem, kv_t *kcache, kv_t *vcache,
                             float *hidden, int pos, int n_layers) {{
{_interfaces(["wmem", "pmem", "kcache", "vcache", "hidden"], ["pos", "n_layers"])}
    t_x buf[DIM];
    trico::load_vec<t_x, DIM>(hidden, buf);
    run_layers(buf, wmem, pmem, kcache, vcache, pos, n_layers);
    trico::store_vec<t_x, DIM>(buf, hidden);
}}
"""
    parts = [
        "// Generated by trico.hls: one decoder layer per call of layer_step, looped by the layer engine.",
        '#include "trico.h"',
        "",
        *consts,
        "",
        layer_function(graph, mm),
        engine,
    ]
    if head is not None:
        parts.append(_decode_source(mm, head))
    return "\n".join(parts) + "\n"


def _interfaces(ports: list[str], scalars: list[str]) -> str:
    bundles = {"wmem": "gmem_w", "pmem": "gmem_p", "kcache": "gmem_kv", "vcache": "gmem_kv"}
    lines = [
        f"#pragma HLS INTERFACE m_axi port = {p} offset = slave bundle = {bundles.get(p, 'gmem_io')}"
        for p in ports
    ]
    lines += [f"#pragma HLS INTERFACE s_axilite port = {s}" for s in [*scalars, "return"]]
    return "\n".join(lines)


def _decode_source(mm: MemoryMap, head: HeadSpec) -> str:
    w = head.head
    fmt = FORMAT_TRAITS[w.fmt](w, "float")
    gp, gw = mm.globals_p, mm.globals_w
    args = (
        f"{_ptr('wmem', gw.get('head_codes', -1))}, {_ptr('pmem', gp.get('head_dense', -1))}, "
        f"{_ptr('pmem', gp.get('head_scales', -1))}, {_ptr('pmem', gp.get('head_mins', -1))}"
    )
    return f"""
static const int VOCAB = {w.n};

// One token of the whole model: embedding row, every layer, final norm, output projection, argmax.
extern "C" int trico_decode(const trico::wbyte_t *wmem, const float *pmem, kv_t *kcache, kv_t *vcache, int token,
                            int pos, int n_layers, float *logits) {{
{_interfaces(["wmem", "pmem", "kcache", "vcache", "logits"], ["token", "pos", "n_layers"])}
    t_x buf[DIM];
    trico::load_vec<t_x, DIM>(pmem + {gp["embed"]} + (long)token * DIM, buf);
    run_layers(buf, wmem, pmem, kcache, vcache, pos, n_layers);
    static float hn[DIM], lg[VOCAB];
    trico::rmsnorm<t_x, float, float, DIM>(buf, pmem + {gp["final_norm"]}, {head.norm_eps!r}f, hn);
    trico::matvec<{fmt}, float, float, float, VOCAB, DIM, {w.group}, {head.unroll}>(hn, {args}, lg);
    trico::store_vec<float, VOCAB>(lg, logits);
    return trico::argmax<float, VOCAB>(lg);
}}
"""


def testbench_source(graph: Graph, mm: MemoryMap, head: HeadSpec | None) -> str:
    """tb.cpp: loads the memory images, runs the layer engine (or a greedy decode loop), writes outputs."""
    n_kv = "(long)n_layers * KV_STRIDE"
    common = f"""// Generated by trico.hls: C-simulation testbench.
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "trico.h"

typedef {_kv_type(graph)} kv_t;
static const int DIM = {graph.meta["dim"]};
static const long KV_STRIDE = {graph.meta["n_kv_heads"] * graph.meta["max_ctx"] * graph.meta["head_dim"]};

extern "C" void trico_layers(const trico::wbyte_t *, const float *, kv_t *, kv_t *, float *, int, int);
extern "C" int trico_decode(const trico::wbyte_t *, const float *, kv_t *, kv_t *, int, int, int, float *);

template <class T>
static std::vector<T> load(const char *path) {{
    FILE *f = fopen(path, "rb");
    if (!f) {{ fprintf(stderr, "cannot open %s\\n", path); exit(1); }}
    fseek(f, 0, SEEK_END);
    long n = ftell(f) / (long)sizeof(T);
    fseek(f, 0, SEEK_SET);
    std::vector<T> v(n);
    if (n && fread(v.data(), sizeof(T), n, f) != (size_t)n) {{ fprintf(stderr, "short read %s\\n", path); exit(1); }}
    fclose(f);
    return v;
}}

template <class T>
static void save(const char *path, const T *x, long n) {{
    FILE *f = fopen(path, "wb");
    fwrite(x, sizeof(T), n, f);
    fclose(f);
}}

int main(int argc, char **argv) {{
    if (argc < 3) {{ fprintf(stderr, "usage: csim N_LAYERS POS|N_NEW\\n"); return 2; }}
    const int n_layers = atoi(argv[1]), arg = atoi(argv[2]);
    std::vector<trico::wbyte_t> wmem = load<trico::wbyte_t>("wmem.bin");
    std::vector<float> pmem = load<float>("pmem.bin");
    std::vector<float> kf = load<float>("kcache.f32"), vf = load<float>("vcache.f32");
    if ((long)kf.size() != {n_kv}) {{ fprintf(stderr, "kcache.f32 has %ld values\\n", (long)kf.size()); return 1; }}
    std::vector<kv_t> kc(kf.size()), vc(vf.size());
    for (size_t i = 0; i < kf.size(); i++) {{ kc[i] = kv_t(kf[i]); vc[i] = kv_t(vf[i]); }}
"""
    if head is None:
        body = """    std::vector<float> hidden = load<float>("hidden.f32");
    trico_layers(wmem.data(), pmem.data(), kc.data(), vc.data(), hidden.data(), arg, n_layers);
    save("out.f32", hidden.data(), DIM);
    return 0;
}
"""
    else:
        body = f"""    // Feed the prompt one token per decode step, then decode greedily: the accelerator only runs decode steps.
    std::vector<int> prompt = load<int>("prompt.i32");
    std::vector<float> logits({head.head.n});
    std::vector<int> out;
    int next = 0, pos = 0;
    for (size_t i = 0; i < prompt.size(); i++, pos++)
        next = trico_decode(wmem.data(), pmem.data(), kc.data(), vc.data(), prompt[i], pos, n_layers, logits.data());
    out.push_back(next);
    for (int s = 1; s < arg; s++, pos++) {{
        next = trico_decode(wmem.data(), pmem.data(), kc.data(), vc.data(), next, pos, n_layers, logits.data());
        out.push_back(next);
    }}
    save("tokens.i32", out.data(), (long)out.size());
    save("logits.f32", logits.data(), (long)logits.size());
    return 0;
}}
"""
    return common + body
