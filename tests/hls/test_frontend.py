"""The fx frontend: a decoder layer's decode step becomes the expected IR; unsupported ops are named."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trico.config import tiny_config
from trico.errors import TricoError
from trico.hls.frontend import DecodeStep, linear_weights, to_ir, trace
from trico.hls.workload import capture_decode_steps


def _samples(model: nn.Module, layer: int = 0, n: int = 2):
    return capture_decode_steps(model, list(range(5, 25)), layer, n_steps=n)


def test_trace_gives_llama_decode_ops(tiny_model: nn.Module) -> None:
    samples, _ = _samples(tiny_model)
    g = to_ir(trace(DecodeStep(tiny_model.model.layers[0])), samples, max_ctx=20)
    ops = [n.op for n in g.nodes if n.op != "alias"]
    assert ops == [
        "rmsnorm", "linear", "linear", "linear", "rope", "rope", "attention", "linear", "add",
        "rmsnorm", "linear", "silu", "linear", "mul", "linear", "add",
    ]  # fmt: skip
    att = next(n for n in g.nodes if n.op == "attention")
    assert (att.attrs["n_heads"], att.attrs["n_kv_heads"], att.attrs["head_dim"]) == (4, 2, 16)
    assert g.inputs == ["x", "cos", "sin"]
    assert g.tensors[g.output].size == 64
    # Calibration statistics are real: the output's peak is its largest |value| over the samples.
    assert g.tensors[g.output].absmax > 0 and g.tensors[g.output].rms > 0


def test_kv_leaf_matches_the_static_cache(tiny_model: nn.Module) -> None:
    """The traced step (with the KVAttention leaf) reproduces the model's own layer output."""
    samples, refs = _samples(tiny_model)
    gm = trace(DecodeStep(tiny_model.model.layers[0]))
    s = samples[-1]
    gm.kv.k_cache, gm.kv.v_cache = s.k_cache, s.v_cache
    out = gm(s.x, s.cos[None], s.sin[None], torch.tensor([s.pos]))
    torch.testing.assert_close(out, refs[-1], rtol=1e-5, atol=1e-6)


class _GeluLayer(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, x, cos, sin, input_pos, cache):  # noqa: ANN001, ANN201
        return F.gelu(self.layer(x, cos, sin, input_pos, cache))


def test_unsupported_operator_is_named(tiny_model: nn.Module) -> None:
    samples, _ = _samples(tiny_model)
    step = DecodeStep(_GeluLayer(tiny_model.model.layers[0]))
    with pytest.raises(TricoError, match=r"unsupported operator: .*gelu"):
        to_ir(trace(step), samples, max_ctx=20)


def test_linear_weights_reads_qlinear_formats() -> None:
    from trico.models.llama import build_model
    from trico.quant import quantize

    for scheme, fmt in (("int8", "int8"), ("int4-rtn-g32-asym", "uint4"), ("ternary-pc", "tern2")):
        m = build_model(tiny_config())
        quantize(m, scheme, None, progress=False)
        q = m.model.layers[0].self_attn.q_proj
        w = linear_weights(q)
        assert w.fmt == fmt and w.scales.shape == (w.n, w.k // w.group)
        assert (w.mins is not None) == (scheme.endswith("asym"))


def test_unsupported_weight_format_is_refused() -> None:
    from trico.models.llama import build_model
    from trico.quant import quantize

    m = build_model(tiny_config())
    quantize(m, "int3-rtn-g128-fit", None, progress=False)
    with pytest.raises(TricoError, match="not supported by the HLS library"):
        linear_weights(m.model.layers[0].self_attn.q_proj)
