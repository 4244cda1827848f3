"""The model against Hugging Face's LlamaForCausalLM on random weights (GQA, tied, Llama-3.1 RoPE)."""

import pytest
import torch

from tests.helpers import hf_llama_config, tiny_model
from trico.config import RopeScaling
from trico.engine.kv_cache import StaticKVCache

transformers = pytest.importorskip("transformers")


def _hf_twin(model):
    hf_cfg = hf_llama_config(model.config)
    hf = transformers.LlamaForCausalLM(hf_cfg).eval()
    hf.load_state_dict(model.state_dict(), strict=False)
    return hf


@pytest.mark.parametrize(
    "overrides",
    [
        dict(),
        dict(tie_embeddings=True, n_kv_heads=1),
        dict(rope_scaling=RopeScaling(factor=8.0, original_max_position=32), rope_theta=500000.0),
    ],
    ids=["gqa", "tied-mqa", "llama3-rope"],
)
@torch.no_grad()
def test_logits_match_transformers(overrides):
    model = tiny_model(**overrides)
    hf = _hf_twin(model)
    x = torch.randint(0, 256, (2, 100))
    assert (model(x) - hf(x).logits).abs().max().item() < 1e-4


@torch.no_grad()
def test_prefill_then_decode_equals_full_forward():
    model = tiny_model()
    x = torch.randint(0, 256, (2, 24))
    full = model(x)
    cache = StaticKVCache(model.config, batch_size=2, max_len=64)
    last = model.prefill(x[:, :16], torch.arange(16), cache)
    assert torch.allclose(last, full[:, 15], atol=1e-5)
    for pos in range(16, 24):
        step = model.decode(x[:, pos : pos + 1], torch.tensor([pos]), cache)
        assert torch.allclose(step, full[:, pos], atol=1e-5)


@torch.no_grad()
def test_prefill_of_a_right_padded_chunk_gives_the_unpadded_logits_and_cache():
    """A chunk padded past its last real token (a replayed graph's shape) with last_index: the real tokens'
    logits and cache entries are the unpadded chunk's, and decoding on overwrites the padding's entries."""
    model = tiny_model(seed=5)
    g = torch.Generator().manual_seed(5)
    tokens = torch.randint(0, model.config.vocab_size, (2, 9), generator=g)
    padded = torch.cat([tokens, torch.randint(0, model.config.vocab_size, (2, 7), generator=g)], 1)
    plain, pad = StaticKVCache(model.config, 2, 32), StaticKVCache(model.config, 2, 32)
    want = model.prefill(tokens, torch.arange(9), plain)
    got = model.prefill(padded, torch.arange(16), pad, last_index=torch.tensor([8]))
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(pad.k[:, :, :, :9], plain.k[:, :, :, :9])
    for pos in (9, 10):
        tok = torch.tensor([[3], [4]])
        torch.testing.assert_close(
            model.decode(tok, torch.tensor([pos]), pad), model.decode(tok, torch.tensor([pos]), plain)
        )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@torch.no_grad()
def test_half_precision_runs_close_to_fp32(dtype):
    model = tiny_model()
    x = torch.randint(0, 256, (1, 32))
    ref = model(x)
    low = model.to(dtype)(x).float()
    assert low.dtype == torch.float32 and (low - ref).abs().max() < 0.05 * ref.abs().max()
    assert model.rotary.cos.dtype == torch.float32  # RoPE tables stay fp32 after the cast


@torch.no_grad()
def test_half_precision_logits_are_fp32_sums_of_the_final_hidden_states():
    """A bf16 model's logits come back in fp32, not rounded to bf16 (whose 1/16 steps near 14 make argmax ties)."""
    from trico.models.llama import head_logits

    model = tiny_model().to(torch.bfloat16)
    x = torch.randint(0, 256, (1, 8))
    logits = model(x)
    assert logits.dtype == torch.float32
    h = torch.randn(1, 3, model.config.dim).to(torch.bfloat16)
    want = h.float() @ model.lm_head.weight.float().t()
    assert torch.equal(head_logits(model.lm_head, h), want)
    assert not torch.equal(want.to(torch.bfloat16).float(), want)  # rounding would have changed them
