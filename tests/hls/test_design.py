"""Compile + C-simulate a tiny Llama's decode step: float, fixed and quantized weights, the layer engine
over the whole model, and a g++ error surfaced from generated code."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trico.config import tiny_config
from trico.errors import TricoError
from trico.hls.design import compile, run_csim
from trico.hls.workload import capture_decode_steps, greedy_reference
from trico.models.llama import build_model


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _layer_case(model: torch.nn.Module, layer: int = 1):  # noqa: ANN202
    return capture_decode_steps(model, list(range(7, 39)), layer, n_steps=3)


@pytest.mark.parametrize("precision, tol", [("float", 1e-5), ("fixed", 2e-2)])
def test_tiny_layer_csim_matches_pytorch(tiny_model, tmp_path, precision: str, tol: float) -> None:  # noqa: ANN001
    samples, refs = _layer_case(tiny_model)
    d = compile(tiny_model.model.layers[1], samples, precision, "u280", config=tiny_model.config, unroll=4)
    res = d.csim(tmp_path / "d", opt="-O1")
    err = _rel(res.outputs["hidden"], refs[-1].numpy().reshape(-1))
    assert err <= tol
    top = (tmp_path / "d" / "top.cpp").read_text()
    for pragma in (
        "INTERFACE m_axi port = wmem",
        "INTERFACE m_axi port = kcache",
        "DATAFLOW",
        "STREAM variable",
    ):
        assert pragma in top
    assert "trico::matvec<" in top and "trico::attention<" in top


@pytest.mark.parametrize(
    "scheme, precision, tol",
    [
        ("int8", "float", 1e-5),
        ("int4-rtn-g32-asym", "float", 1e-5),
        ("ternary-pc", "float", 1e-5),
        # The code-domain accumulator (x * integer code, scaled per group afterwards) spans a far larger
        # range than the layer's outputs; its type must come from that range.
        ("int8", "fixed", 2e-2),
    ],
)
def test_quantized_layer_csim_matches_qlinear_reference(
    tmp_path, scheme: str, precision: str, tol: float
) -> None:  # noqa: ANN001, E501
    from trico.quant import quantize

    m = quantize(build_model(tiny_config()), scheme, None, progress=False)
    samples, refs = _layer_case(m, layer=0)
    d = compile(
        m.model.layers[0], samples[-1], precision, "u280", config=m.config, unroll=8, calib=samples[:-1]
    )
    fmts = {s["weights"] for s in d.manifest()["stages"] if s["weights"]}
    assert len(fmts) == 1 and fmts != {"float"}
    res = d.csim(tmp_path / "q", opt="-O1")
    assert _rel(res.outputs["hidden"], refs[-1].numpy().reshape(-1)) <= tol


def test_layer_engine_runs_the_whole_tiny_model(tiny_model, tmp_path) -> None:  # noqa: ANN001
    prompt = [3, 17, 29, 101, 55]
    samples, _ = capture_decode_steps(tiny_model, prompt, 0, n_steps=1)
    d = compile(tiny_model, samples, "float", "zcu102", max_ctx=16, unroll=4)
    assert d.kind == "model" and len(d.layers) == 2
    res = d.csim(tmp_path / "m", prompt=prompt, n_new=6, opt="-O1")
    assert res.outputs["tokens"].tolist() == greedy_reference(tiny_model, prompt, 6, 16)


def test_layer_engine_fixed_point_whole_tiny_model(tiny_model, tmp_path) -> None:  # noqa: ANN001
    """One set of ap_fixed stage types, calibrated on the union of every layer's ranges."""
    from trico.hls.workload import capture_layers

    prompt = [3, 17, 29, 101, 55, 9, 200, 41, 77, 12]
    calib = {i: v[0] for i, v in capture_layers(tiny_model, prompt, [0, 1], n_steps=4).items()}
    d = compile(tiny_model, calib[0][-1], "fixed", "u280", max_ctx=24, unroll=4, calib=calib)
    assert all(t.startswith("ap_fixed<") for t in d.graph.meta["precision"]["tensors"].values())
    res = d.csim(tmp_path / "mf", prompt=prompt, n_new=6, opt="-O1")
    assert res.outputs["tokens"].tolist() == greedy_reference(tiny_model, prompt, 6, 24)
    with pytest.raises(TricoError, match="calibration inputs of every layer"):
        compile(tiny_model, calib[0][-1], "fixed", "u280", max_ctx=24, calib={0: calib[0]})


def test_gpp_error_is_surfaced(tiny_model, tmp_path) -> None:  # noqa: ANN001
    samples, _ = _layer_case(tiny_model)
    d = compile(tiny_model.model.layers[1], samples, "float", "u280", config=tiny_model.config)
    out = d.emit(tmp_path / "bad")
    top = out / "top.cpp"
    top.write_text(top.read_text().replace("trico::rmsnorm<", "trico::rmsnorm_typo<", 1))
    with pytest.raises(
        TricoError, match=r"(?s)g\+\+ failed to compile top.cpp.*error: .rmsnorm_typo. is not a member"
    ):
        run_csim(out, opt="-O0")


def test_bad_inputs_are_clear_errors(tiny_model, tmp_path) -> None:  # noqa: ANN001
    samples, _ = _layer_case(tiny_model)
    with pytest.raises(TricoError, match="unknown FPGA part"):
        compile(tiny_model.model.layers[1], samples, "float", "virtex-9000", config=tiny_model.config)
    with pytest.raises(TricoError, match="needs its ModelConfig"):
        compile(tiny_model.model.layers[1], samples, "float", "u280")
    with pytest.raises(TricoError, match="not an emitted HLS design"):
        run_csim(tmp_path)
