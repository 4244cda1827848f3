"""Compiler passes: fusion, precision from calibration ranges, parallelism, forks and streams."""

from __future__ import annotations

import pytest
from torch import nn

from trico.errors import TricoError
from trico.hls.design import trace_layer
from trico.hls.passes import LAYER_FLOW, PASSES, Fixed, HlsOptions, fixed_for, run_flow
from trico.hls.workload import capture_decode_steps


@pytest.fixture(scope="module")
def raw_graph(tiny_model: nn.Module):  # noqa: ANN201
    samples, _ = capture_decode_steps(tiny_model, list(range(5, 25)), 1, n_steps=2)
    return lambda: trace_layer(tiny_model.model.layers[1], tiny_model.config, samples, 20)


def test_flow_is_a_named_ordered_list() -> None:
    assert all(name in PASSES for name in LAYER_FLOW)
    assert (
        LAYER_FLOW.index("fuse_silu_gate")
        < LAYER_FLOW.index("assign_precision")
        < LAYER_FLOW.index("insert_forks")
    )


def test_fusions(raw_graph) -> None:  # noqa: ANN001
    raw = raw_graph()
    sums = {n.output: raw.tensors[n.output].absmax for n in raw.nodes if n.op == "add"}
    g = run_flow(raw, ["fold_layout", "fuse_silu_gate", "fuse_residual_add"], HlsOptions())
    # A fused mat-vec + residual writes the sum, so its buffer keeps the sum's calibrated range.
    for n in g.nodes:
        if n.op == "linear_add":
            assert g.tensors[n.output].absmax == sums[n.output]
    ops = [n.op for n in g.nodes]
    assert "alias" not in ops and "silu" not in ops and "mul" not in ops and "add" not in ops
    assert ops.count("silu_gate") == 1 and ops.count("linear_add") == 2
    assert g.meta["passes"] == ["fold_layout", "fuse_silu_gate", "fuse_residual_add"]


def test_fixed_types_cover_calibrated_ranges(raw_graph) -> None:  # noqa: ANN001
    g = run_flow(raw_graph(), LAYER_FLOW, HlsOptions(precision="fixed", noise_bits=10))
    for name, spec in g.meta["precision"]["tensors"].items():
        w, i = (int(v) for v in spec[len("ap_fixed<") : -1].split(","))
        t = g.tensors.get(name)
        if t is None:
            continue
        assert 2 ** (i - 1) >= t.absmax, name  # the integer bits hold the peak seen in calibration
        if t.typical > 0:
            assert 2.0 ** -(w - i) <= t.typical * 2**-9, name  # step well below the median magnitude
    att = next(n for n in g.nodes if n.op == "attention")
    assert g.tensors[att.inputs[1]].ctype == g.tensors[att.inputs[2]].ctype == att.attrs["kv_type"]
    assert g.tensors["x"].ctype == g.tensors[g.output].ctype  # the layer engine feeds y back as x


def test_fixed_for_rule() -> None:
    assert fixed_for(3.0, 1.0, 10) == Fixed(14, 4)  # 2*3 -> 3 bits + sign; 2^-10 <= 1 * 2^-10
    assert fixed_for(0.4, 0.1, 8).i == 1


def test_forks_give_each_buffer_one_consumer_and_streams_are_marked(raw_graph) -> None:  # noqa: ANN001
    g = run_flow(raw_graph(), LAYER_FLOW, HlsOptions(unroll=4))
    for t in [*g.inputs, *[o for n in g.nodes for o in n.outputs]]:
        if t not in ("cos", "sin"):
            assert len(g.consumers(t)) <= 1, t
    assert any(n.op == "fork" for n in g.nodes)
    streams = {t.stream for t in g.tensors.values()}
    assert streams == {"fifo", "pipo"}
    # Residuals bypass a whole block: their FIFOs hold the vector; in-step FIFOs stay shallow.
    for n in g.nodes:
        if n.op == "linear_add":
            res = g.tensors[n.inputs[1]]
            assert res.stream == "fifo" and res.depth == res.size
    assert any(t.stream == "fifo" and t.depth == 2 for t in g.tensors.values())
    lin = [n for n in g.nodes if n.op.startswith("linear")]
    assert all(n.attrs["unroll"] == 4 for n in lin)
    assert all(g.tensors[n.inputs[0]].partition >= 4 for n in lin)


def test_bad_options_and_unknown_pass(raw_graph) -> None:  # noqa: ANN001
    with pytest.raises(TricoError, match="unknown precision"):
        HlsOptions(precision="fp8")
    with pytest.raises(TricoError, match="unknown HLS pass"):
        run_flow(raw_graph(), ["fold_layout", "no_such_pass"], HlsOptions())
