"""INT8 KV cache: keys/values stored as int8 with one fp16 scale per (batch, kv_head, position).

scale = max|x| / 127 over head_dim (the shared weight-format contract). Same shapes and `attend`
as StaticKVCache, so the model and generator use it unchanged (`cache_factory` of a loaded model).
"""

from __future__ import annotations

import torch

from trico.config import ModelConfig
from trico.engine.kv_cache import StaticKVCache, write_positions


def quantize_kv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [..., D] -> (int8 codes [..., D], fp16 scales [..., 1]) with scale = max|x| / 127 per row."""
    scale = (x.float().abs().amax(-1, keepdim=True) / 127.0).half()
    s = scale.float()
    inv = torch.where(s == 0, torch.zeros_like(s), 1.0 / s)
    q = torch.round(x.float() * inv).clamp_(-127, 127).to(torch.int8)
    return q, scale


def dequantize_kv(q: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Inverse of quantize_kv (up to rounding): q * scale in the requested dtype."""
    return (q.float() * scale.float()).to(dtype)


class Int8KVCache(StaticKVCache):
    """StaticKVCache whose k/v buffers are int8, with fp16 scales beside them (half the bytes of fp16)."""

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        max_len: int,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(config, batch_size, max_len, dtype=torch.int8, device=device)
        self.compute_dtype = dtype
        shape = (*self.k.shape[:-1], 1)
        self.register_buffer(
            "k_scale", torch.zeros(shape, dtype=torch.float16, device=device), persistent=False
        )
        self.register_buffer(
            "v_scale", torch.zeros(shape, dtype=torch.float16, device=device), persistent=False
        )

    def reset(self) -> None:
        """Forget every stored token."""
        super().reset()
        self.k_scale.zero_()
        self.v_scale.zero_()

    def store(
        self, layer: int, k: torch.Tensor, v: torch.Tensor, input_pos: torch.Tensor, from_zero: bool = False
    ) -> None:
        """Quantize k, v [B, Hkv, T, D] per position and head and write them at input_pos (see StaticKVCache.store)."""
        kq, ks = quantize_kv(k)
        vq, vs = quantize_kv(v)
        for buf, x in ((self.k, kq), (self.v, vq), (self.k_scale, ks), (self.v_scale, vs)):
            write_positions(buf[layer], x, input_pos, from_zero)

    def keys_values(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Dequantized key and value buffers of one layer, [B, Hkv, max_len, D]."""
        return (
            dequantize_kv(self.k[layer], self.k_scale[layer], self.compute_dtype),
            dequantize_kv(self.v[layer], self.v_scale[layer], self.compute_dtype),
        )
