"""StaticKVCache.attend: a prompt's first chunk attends causally over its own positions, later chunks through the mask."""

import pytest
import torch

from trico.config import tiny_config
from trico.engine import kv_cache
from trico.engine.kv_cache import StaticKVCache
from trico.engine.kv_cache_int8 import Int8KVCache


def _qkv(cfg, t: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # noqa: ANN001
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(2, cfg.n_heads, t, cfg.head_dim, generator=g)
    k = torch.randn(2, cfg.n_kv_heads, t, cfg.head_dim, generator=g)
    v = torch.randn(2, cfg.n_kv_heads, t, cfg.head_dim, generator=g)
    return q, k, v


def _attend_chunks(cache_cls, causal: bool, chunks: list[int]) -> list[torch.Tensor]:  # noqa: ANN001
    cfg = tiny_config()
    cache = cache_cls(cfg, 2, 64)
    before = kv_cache.CAUSAL_PREFILL
    kv_cache.CAUSAL_PREFILL = causal
    try:
        outs, start = [], 0
        for i, t in enumerate(chunks):
            pos = torch.arange(start, start + t)
            outs.append(cache.attend(0, *_qkv(cfg, t, seed=i), pos))
            start += t
        return outs
    finally:
        kv_cache.CAUSAL_PREFILL = before


@pytest.mark.parametrize("cache_cls", [StaticKVCache, Int8KVCache])
def test_first_chunk_causal_attention_matches_the_masked_one(cache_cls) -> None:  # noqa: ANN001
    fast = _attend_chunks(cache_cls, True, [12, 5, 1])
    masked = _attend_chunks(cache_cls, False, [12, 5, 1])
    for a, b in zip(fast, masked):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_position_check_is_read_once_per_forward() -> None:
    cfg = tiny_config()
    cache = StaticKVCache(cfg, 2, 64)
    pos = torch.arange(8)
    cache.attend(0, *_qkv(cfg, 8, seed=0), pos)
    assert cache._pos_checked[0] is pos and cache._pos_checked[1] is True
    later = torch.arange(8, 12)
    cache.attend(0, *_qkv(cfg, 4, seed=1), later)
    assert cache._pos_checked[0] is later and cache._pos_checked[1] is False
