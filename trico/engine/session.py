"""Wiring a loaded model, a static KV cache and a sampler into a Generator."""

from __future__ import annotations

from trico.engine.generator import Generator
from trico.engine.kv_cache import StaticKVCache
from trico.engine.sampler import Sampler, SamplingParams
from trico.io.loader import LoadedModel


def make_generator(
    loaded: LoadedModel, max_len: int, params: SamplingParams | None = None, int8_activations: bool = False
) -> Generator:
    """A batch-1 Generator over a cache of max_len positions (capped at the model's context).

    int8_activations: on CUDA, quantized layers decode with int8 activations (see enable_fast_decode).
    """
    model = loaded.model
    weight = next(model.parameters())
    max_len = min(max_len, loaded.config.max_seq_len)
    cache_factory = loaded.extra.get("cache_factory", StaticKVCache)
    cache = cache_factory(loaded.config, 1, max_len, dtype=weight.dtype, device=weight.device)
    gen = Generator(model, cache, Sampler(params, device=weight.device))
    from trico.engine.cuda_graphs import enable_fast_decode

    enable_fast_decode(gen, int8_activations=int8_activations)  # CUDA: fused + graphed; CPU: unchanged
    return gen
