"""compile(module, example_inputs, precision, part) -> Design; Design.emit(dir), .csim(), .estimate()."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from trico.config import ModelConfig
from trico.errors import TricoError
from trico.hls import csim as csim_mod
from trico.hls.emitter import (
    HeadSpec,
    MemoryMap,
    pack_layer,
    plan_globals,
    plan_layer,
    testbench_source,
    top_source,
)
from trico.hls.frontend import DecodeInputs, DecodeStep, linear_weights, to_ir, trace
from trico.hls.ir import Graph, LinearWeights
from trico.hls.passes import LAYER_FLOW, HlsOptions, run_flow
from trico.models.llama import DecoderLayer, RotaryEmbedding


@dataclass
class CsimResult:
    """What a C-simulation run produced."""

    outputs: dict[str, np.ndarray]
    compile_s: float
    run_s: float
    out_dir: Path


@dataclass
class Design:
    """A compiled accelerator: the optimized graph, its memory map and what it runs over."""

    graph: Graph
    config: ModelConfig
    options: HlsOptions
    part: str
    layers: list[nn.Module]
    rope: tuple[np.ndarray, np.ndarray]
    head: HeadSpec | None = None
    sample: DecodeInputs | None = None
    mm: MemoryMap = field(default_factory=MemoryMap)

    def __post_init__(self) -> None:
        self.mm = plan_layer(self.graph)
        plan_globals(self.mm, len(self.layers), self.rope[0].size, self.head)

    @property
    def kind(self) -> str:
        """'layer' (hidden state in, hidden state out) or 'model' (token in, next token out)."""
        return "layer" if self.head is None else "model"

    def emit(self, out_dir: str | Path, prompt: list[int] | None = None) -> Path:
        """Write top.cpp, tb.cpp, the weight memory images, inputs and design.json into out_dir (atomically)."""
        out_dir = Path(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".hls-", dir=out_dir.parent))
        try:
            self._write(tmp, prompt)
            if out_dir.exists():
                shutil.rmtree(out_dir)
            os.replace(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out_dir

    def _write(self, d: Path, prompt: list[int] | None) -> None:
        (d / "top.cpp").write_text(top_source(self.graph, self.mm, self.head))
        (d / "tb.cpp").write_text(testbench_source(self.graph, self.mm, self.head))
        wmem = np.zeros(self.mm.w_total, dtype=np.uint8)
        pmem = np.zeros(self.mm.p_total, dtype=np.float32)
        for i, layer in enumerate(self.layers):
            wb, pb = pack_layer(self.graph, self.mm, layer)
            wmem[i * self.mm.w_stride : (i + 1) * self.mm.w_stride] = wb
            pmem[i * self.mm.p_stride : (i + 1) * self.mm.p_stride] = pb
        gp = self.mm.globals_p
        for name, table in zip(("rope_cos", "rope_sin"), self.rope):
            pmem[gp[name] : gp[name] + table.size] = table.reshape(-1)
        if self.head is not None:
            self._write_head(wmem, pmem)
        wmem.tofile(d / "wmem.bin")
        pmem.tofile(d / "pmem.bin")
        kv_shape = (len(self.layers), self.config.n_kv_heads, self.options.max_ctx, self.config.head_dim)
        k = np.zeros(kv_shape, dtype=np.float32)
        v = np.zeros(kv_shape, dtype=np.float32)
        run = {"n_layers": len(self.layers)}
        if self.head is None:
            if self.sample is None:
                raise TricoError("a layer design needs an example input to emit its testbench data")
            s = self.sample
            k[0, :, : s.pos] = s.k_cache[:, : s.pos].float().numpy()
            v[0, :, : s.pos] = s.v_cache[:, : s.pos].float().numpy()
            s.x.float().numpy().reshape(-1).tofile(d / "hidden.f32")
            run["arg"] = s.pos
        else:
            np.asarray(prompt or [self.config.bos_token_id or 0], dtype=np.int32).tofile(d / "prompt.i32")
            run["arg"] = 1
        k.tofile(d / "kcache.f32")
        v.tofile(d / "vcache.f32")
        (d / "design.json").write_text(json.dumps(self.manifest(run), indent=2))

    def _write_head(self, wmem: np.ndarray, pmem: np.ndarray) -> None:
        gp, gw, h = self.mm.globals_p, self.mm.globals_w, self.head
        pmem[gp["embed"] : gp["embed"] + h.embedding.size] = h.embedding.reshape(-1)
        pmem[gp["final_norm"] : gp["final_norm"] + h.norm.size] = h.norm
        w = h.head
        if w.fmt == "float":
            pmem[gp["head_dense"] : gp["head_dense"] + w.dense.size] = w.dense.reshape(-1)
            return
        codes = np.asarray(w.codes, dtype=np.uint8).reshape(-1)
        wmem[gw["head_codes"] : gw["head_codes"] + codes.size] = codes
        pmem[gp["head_scales"] : gp["head_scales"] + w.scales.size] = w.scales.reshape(-1)
        if "head_mins" in gp:
            pmem[gp["head_mins"] : gp["head_mins"] + w.mins.size] = w.mins.reshape(-1)

    def manifest(self, run: dict | None = None) -> dict:
        """JSON-friendly description: model, options, passes, precision, stages, memory sizes."""
        return {
            "kind": self.kind,
            "model": self.config.name,
            "part": self.part,
            "options": {
                "precision": self.options.precision,
                "unroll": self.options.unroll,
                "noise_bits": self.options.noise_bits,
                "max_ctx": self.options.max_ctx,
            },
            "passes": self.graph.meta.get("passes", []),
            "precision": self.graph.meta.get("precision", {}),
            "stages": [
                {
                    "name": n.name,
                    "op": n.op,
                    "inputs": n.inputs,
                    "output": n.output,
                    "type": self.graph.tensors[n.output].ctype,
                    "weights": n.params["weight"].fmt if n.op.startswith("linear") else None,
                }
                for n in self.graph.nodes
            ],
            "wmem_bytes": int(self.mm.w_total),
            "pmem_floats": int(self.mm.p_total),
            "run": run or {},
        }

    def csim(
        self,
        out_dir: str | Path | None = None,
        prompt: list[int] | None = None,
        n_new: int = 1,
        opt: str = "-O2",
    ) -> CsimResult:
        """Emit (into out_dir or a temp dir), compile with g++ and run; returns the outputs."""
        d = self.emit(out_dir or tempfile.mkdtemp(prefix="trico-hls-"), prompt=prompt)
        return run_csim(d, n_new=n_new, opt=opt)

    def estimate(self, part: str | None = None):  # noqa: ANN201 - Estimate lives in estimator.py
        """Cycles, resources and tokens/s of this design on a part (an estimate, not synthesis)."""
        from trico.hls.estimator import estimate_design

        return estimate_design(self, part or self.part)


def run_csim(out_dir: str | Path, n_new: int | None = None, opt: str = "-O2") -> CsimResult:
    """Compile and run an emitted design directory; reads design.json for how to run it."""
    d = Path(out_dir)
    man_path = d / "design.json"
    if not man_path.is_file():
        raise TricoError(f"{d}: not an emitted HLS design (no design.json); run `trico hls compile` first")
    man = json.loads(man_path.read_text())
    t0 = time.perf_counter()
    binary = csim_mod.compile_cpp([d / "top.cpp", d / "tb.cpp"], d / "csim", opt=opt)
    t1 = time.perf_counter()
    run = man["run"]
    arg = run["arg"] if man["kind"] == "layer" else (n_new or run["arg"])
    csim_mod.run_binary(binary, [str(run["n_layers"]), str(arg)], cwd=d)
    t2 = time.perf_counter()
    if man["kind"] == "layer":
        outputs = {"hidden": np.fromfile(d / "out.f32", dtype=np.float32)}
    else:
        outputs = {
            "tokens": np.fromfile(d / "tokens.i32", dtype=np.int32),
            "logits": np.fromfile(d / "logits.f32", dtype=np.float32),
        }
    return CsimResult(outputs, t1 - t0, t2 - t1, d)


def _rope_tables(config: ModelConfig, max_ctx: int) -> tuple[np.ndarray, np.ndarray]:
    rot = RotaryEmbedding(config)
    return rot.cos[:max_ctx].numpy().copy(), rot.sin[:max_ctx].numpy().copy()


def trace_layer(layer: DecoderLayer, config: ModelConfig, samples: list[DecodeInputs], max_ctx: int) -> Graph:
    """The calibrated IR of one decoder layer before any pass (what DSE starts from)."""
    graph = to_ir(trace(DecodeStep(layer)), samples, max_ctx)
    graph.meta.update(
        dim=config.dim,
        head_dim=config.head_dim,
        n_heads=config.n_heads,
        n_kv_heads=config.n_kv_heads,
        hidden_dim=config.hidden_dim,
        max_ctx=max_ctx,
    )
    return graph


def merge_ranges(into: Graph, other: Graph) -> None:
    """Widen `into`'s calibration statistics so they also cover `other` (the same layer structure)."""
    for name, t in into.tensors.items():
        o = other.tensors[name]
        t.absmax, t.rms = max(t.absmax, o.absmax), max(t.rms, o.rms)
        t.typical = min(t.typical, o.typical) if t.typical and o.typical else t.typical or o.typical
    for n, o in zip(into.nodes, other.nodes):
        for key in ("acc_absmax", "score_absmax"):
            if key in n.attrs:
                n.attrs[key] = max(n.attrs[key], o.attrs[key])
        w, ow = n.params.get("weight"), o.params.get("weight")
        if isinstance(w, LinearWeights):
            w.absmax, w.typical = max(w.absmax, ow.absmax), min(w.typical, ow.typical)


def _graph_for(
    layer: DecoderLayer, config: ModelConfig, samples: list[DecodeInputs], opts: HlsOptions
) -> Graph:
    graph = trace_layer(layer, config, samples, opts.max_ctx)
    return run_flow(graph, LAYER_FLOW, opts)


def compile(
    module: nn.Module,
    example_inputs: DecodeInputs | list[DecodeInputs],
    precision: str = "float",
    part: str = "u280",
    *,
    config: ModelConfig | None = None,
    unroll: int = 8,
    max_ctx: int | None = None,
    noise_bits: int = 10,
    layer_index: int | None = None,
    calib: list[DecodeInputs] | dict[int, list[DecodeInputs]] | None = None,
) -> Design:
    """Compile a DecoderLayer (one-layer design) or a Transformer (layer engine over all layers + head).

    example_inputs: decode-step inputs of one layer; the last one is the testbench input. The
    fixed-point ranges come from `calib` when given (held-out steps), else from every example input.
    A fixed-point Transformer design needs `calib` per layer ({layer: [DecodeInputs]}): every layer
    runs on the same stages, so their types cover the union of the layers' ranges. For a Transformer they come from its layers
    (see trico.hls.workload) and calibrate every layer.
    """
    from trico.hls.parts import get_part

    get_part(part)  # unknown parts fail before any work
    samples = example_inputs if isinstance(example_inputs, list) else [example_inputs]
    if not samples:
        raise TricoError("compile needs at least one example input")
    ctx = max_ctx or samples[-1].k_cache.shape[1]
    opts = HlsOptions(precision=precision, unroll=unroll, noise_bits=noise_bits, max_ctx=ctx)
    if isinstance(module, DecoderLayer):
        if config is None:
            raise TricoError("compiling a DecoderLayer needs its ModelConfig (config=...)")
        graph = _graph_for(module, config, calib or samples, opts)
        return Design(graph, config, opts, part, [module], _rope_tables(config, ctx), sample=samples[-1])
    if hasattr(module, "model") and hasattr(module.model, "layers"):
        config = module.config
        layers = list(module.model.layers)
        if precision == "float":
            graph = _graph_for(layers[layer_index or 0], config, samples, opts)
        else:
            # One set of stage types serves every layer: calibrate each layer, keep the union of ranges.
            if not isinstance(calib, dict) or set(calib) != set(range(len(layers))):
                raise TricoError(
                    "a fixed-point whole-model design needs calibration inputs of every layer: "
                    "calib={layer: [DecodeInputs, ...]} (see trico.hls.workload.capture_layers)"
                )
            graph = trace_layer(layers[0], config, calib[0], opts.max_ctx)
            for i in range(1, len(layers)):
                merge_ranges(graph, trace_layer(layers[i], config, calib[i], opts.max_ctx))
            graph = run_flow(graph, LAYER_FLOW, opts)
        head = HeadSpec(
            embedding=module.model.embed_tokens.weight.detach().float().numpy(),
            norm=module.model.norm.weight.detach().float().numpy(),
            norm_eps=float(module.model.norm.eps),
            head=linear_weights(module.lm_head),
            unroll=unroll,
        )
        return Design(graph, config, opts, part, layers, _rope_tables(config, ctx), head=head)
    raise TricoError(f"cannot compile a {type(module).__name__}: pass a DecoderLayer or a trico Transformer")
