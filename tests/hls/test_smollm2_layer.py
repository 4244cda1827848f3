"""Acceptance: SmolLM2-135M, one decoder layer, decode step at context 128, C-simulation vs PyTorch fp32."""

from __future__ import annotations

import numpy as np

from trico.hls.design import compile


def test_smollm2_layer0_float_and_fixed(smollm2, smollm2_layer0, tmp_path) -> None:  # noqa: ANN001
    samples, refs = smollm2_layer0
    assert samples[-1].pos == 127  # the token at position 127 attends over a context of 128
    ref = refs[-1].numpy().reshape(-1)
    errors = {}
    for precision in ("float", "fixed"):
        # Steps at positions 124..126 calibrate; the step at 127 is held out as the test input.
        d = compile(
            smollm2.model.model.layers[0],
            samples[-1],
            precision,
            "u280",
            config=smollm2.model.config,
            calib=samples[:-1],
        )
        y = d.csim(tmp_path / precision, opt="-O1").outputs["hidden"]
        errors[precision] = float(np.linalg.norm(y - ref) / np.linalg.norm(ref))
        if precision == "fixed":
            types = d.graph.meta["precision"]["tensors"]
            assert all(t.startswith("ap_fixed<") for t in types.values())
    assert errors["float"] <= 1e-5, errors
    assert errors["fixed"] <= 2e-2, errors
