"""INT8 KV cache: per-(batch, head, position) scales, same attention up to rounding, half the bytes."""

import torch

from trico.config import tiny_config
from trico.engine.kv_cache import StaticKVCache
from trico.engine.kv_cache_int8 import Int8KVCache, dequantize_kv, quantize_kv
from trico.models.llama import build_model


def test_quantize_kv_scales_per_row() -> None:
    x = torch.randn(2, 3, 5, 16)
    q, s = quantize_kv(x)
    assert q.dtype == torch.int8 and s.dtype == torch.float16 and s.shape == (2, 3, 5, 1)
    assert torch.equal(q.abs().amax(-1), torch.full((2, 3, 5), 127, dtype=torch.int8))
    err = (dequantize_kv(q, s) - x).abs()
    assert (err <= s.float() * 0.5 + 1e-3 * x.abs()).all()


def test_decoding_with_int8_cache_matches_fp32_cache() -> None:
    cfg = tiny_config()
    torch.manual_seed(0)
    model = build_model(cfg)
    tokens = torch.randint(0, cfg.vocab_size, (1, 24))
    outs = []
    for cls in (StaticKVCache, Int8KVCache):
        cache = cls(cfg, 1, 64)
        logits = [model.prefill(tokens[:, :16], torch.arange(16), cache)]
        for t in range(16, 24):
            logits.append(model.decode(tokens[:, t : t + 1], torch.tensor([t]), cache))
        outs.append(torch.stack(logits))
    assert outs[1].shape == outs[0].shape
    torch.testing.assert_close(outs[1], outs[0], atol=2e-2, rtol=0)
    assert not torch.equal(outs[1], outs[0])  # it really is quantized
    c8 = Int8KVCache(cfg, 1, 64)
    assert (
        c8.k.dtype == torch.int8
        and c8.k.element_size() * 2 == StaticKVCache(cfg, 1, 64, torch.float16).k.element_size()
    )
