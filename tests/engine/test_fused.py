"""The engine's fused layers on a prompt (many tokens), run by the Triton interpreter on CPU tensors."""

import contextlib
import os

import pytest
import torch

from trico.config import tiny_config
from trico.engine.fused import fuse_model_
from trico.engine.kv_cache import StaticKVCache
from trico.kernels import fused_on_cpu
from trico.models.llama import build_model

DEVICES = [
    pytest.param(
        "cpu",
        marks=pytest.mark.skipif(
            os.environ.get("TRITON_INTERPRET") != "1", reason="Triton kernels on CPU tensors"
        ),
    ),
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("with_cache", [False, True])
@torch.no_grad()
def test_fused_prompt_matches_the_reference_layers(with_cache, device):
    """A 6-token prompt (GQA: 4 query heads, 2 KV heads) through the fused layers, RoPE of q and k in one
    launch over the fused QKV output, gives the plain model's logits and, with a cache, its keys and values
    (on CPU through the Triton interpreter, whose bf16 casts truncate: hence the 2e-2)."""
    cfg = tiny_config(dim=128, n_heads=4, n_kv_heads=2)
    model = build_model(cfg, dtype=torch.bfloat16, device=device)
    tokens = torch.randint(0, 256, (2, 6), generator=torch.Generator().manual_seed(2)).to(device)
    positions = torch.arange(6, device=device)
    caches = (
        [StaticKVCache(cfg, 2, 16, torch.bfloat16, device) for _ in range(2)] if with_cache else [None, None]
    )
    want = model(tokens, positions, caches[0])
    fuse_model_(model)
    with fused_on_cpu() if device == "cpu" else contextlib.nullcontext():
        got = model(tokens, positions, caches[1])
    assert float((got.float() - want.float()).norm() / want.float().norm()) < 2e-2
    if with_cache:
        for a, b in ((caches[0].k, caches[1].k), (caches[0].v, caches[1].v)):
            assert float((a[:, :, :, :6].float() - b[:, :, :, :6].float()).norm() / a.float().norm()) < 2e-2
