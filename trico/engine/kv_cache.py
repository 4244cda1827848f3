"""Preallocated static KV cache: fixed shapes, so the decode step can be captured in a CUDA graph."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trico.config import ModelConfig


class StaticKVCache(nn.Module):
    """Keys and values for every layer in [layers, batch, kv_heads, max_len, head_dim] buffers.

    `attend` writes the new keys/values at `input_pos` and attends over the whole buffer with a
    mask built on the device from `input_pos`, so no host synchronisation happens per step.
    """

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        max_len: int,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        if max_len > config.max_seq_len:
            max_len = config.max_seq_len
        self.config, self.batch_size, self.max_len = config, batch_size, max_len
        shape = (config.n_layers, batch_size, config.n_kv_heads, max_len, config.head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("positions", torch.arange(max_len, device=device), persistent=False)

    def reset(self) -> None:
        """Forget every stored token (the buffers are reused, not reallocated)."""
        self.k.zero_()
        self.v.zero_()

    def store(self, layer: int, k: torch.Tensor, v: torch.Tensor, input_pos: torch.Tensor) -> None:
        """Write k, v [B, Hkv, T, D] at positions input_pos [T] of one layer."""
        self.k[layer].index_copy_(2, input_pos, k.to(self.k.dtype))
        self.v[layer].index_copy_(2, input_pos, v.to(self.v.dtype))

    def keys_values(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The full key and value buffers of one layer, [B, Hkv, max_len, D]."""
        return self.k[layer], self.v[layer]

    def attend(
        self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, input_pos: torch.Tensor
    ) -> torch.Tensor:
        """Store this chunk's k/v, then attend q [B, H, T, D] causally over everything stored."""
        self.store(layer, k, v, input_pos)
        if q.is_cuda and q.shape[2] == 1 and q.shape[-1] in (32, 64, 128, 256):
            out = self._cuda_decode_attention(layer, q, input_pos)
            if out is not None:
                return out
        keys, values = self.keys_values(layer)
        mask = self.positions[None, :] <= input_pos[:, None]  # [T, max_len]
        return F.scaled_dot_product_attention(
            q,
            keys.to(q.dtype),
            values.to(q.dtype),
            attn_mask=mask,
            enable_gqa=q.shape[1] != keys.shape[1],
        )

    def _cuda_decode_attention(
        self, layer: int, q: torch.Tensor, input_pos: torch.Tensor
    ) -> torch.Tensor | None:
        """One-token attention on CUDA with the flash-decoding kernel over the valid prefix only.

        Reads the raw buffers (int8 ones with their scales, for Int8KVCache), so nothing is
        dequantized in bulk and the call is graph-capturable. None when the buffers do not fit it.
        """
        from trico.kernels import kernels_enabled
        from trico.kernels.decode_attention import decode_attention

        if not kernels_enabled():
            return None
        k, v = self.k[layer], self.v[layer]
        if k.dtype == torch.int8 and hasattr(self, "k_scale"):
            ks, vs = self.k_scale[layer][..., 0], self.v_scale[layer][..., 0]
            return decode_attention(q[:, :, 0], k, v, input_pos, ks, vs).unsqueeze(2)
        if k.dtype != q.dtype:
            return None
        return decode_attention(q[:, :, 0], k, v, input_pos).unsqueeze(2)
