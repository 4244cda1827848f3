"""Preallocated static KV cache: fixed shapes, so the decode step can be captured in a CUDA graph."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from trico.config import ModelConfig

CAUSAL_PREFILL = True
"""A prompt's first chunk attends causally over its own positions (flash kernels) rather than over the
whole buffer with a mask; the two agree, the A/B knob is for `benchmarks/profile_prefill.py`."""


def write_positions(buf: torch.Tensor, x: torch.Tensor, input_pos: torch.Tensor, from_zero: bool) -> None:
    """buf[:, :, input_pos] = x along the position axis (dim 2)."""
    if from_zero:
        buf[:, :, : x.shape[2]].copy_(x)
    else:
        buf.index_copy_(2, input_pos, x)


class StaticKVCache(nn.Module):
    """Keys and values for every layer in [layers, batch, kv_heads, max_len, head_dim] buffers.

    `attend` writes the new keys/values at `input_pos` and attends over the whole buffer with a
    mask built on the device from `input_pos`, so no host synchronisation happens per decode step;
    a prompt's first chunk (positions 0..T-1, read on the host once a forward) attends causally
    over its own positions instead.
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
        self._pos_checked: tuple[torch.Tensor, bool] | None = None

    def reset(self) -> None:
        """Forget every stored token (the buffers are reused, not reallocated)."""
        self.k.zero_()
        self.v.zero_()

    def store(
        self, layer: int, k: torch.Tensor, v: torch.Tensor, input_pos: torch.Tensor, from_zero: bool = False
    ) -> None:
        """Write k, v [B, Hkv, T, D] at positions input_pos [T] of one layer (`from_zero`: they are 0..T-1,
        a plain slice copy rather than an indexed scatter)."""
        write_positions(self.k[layer], k.to(self.k.dtype), input_pos, from_zero)
        write_positions(self.v[layer], v.to(self.v.dtype), input_pos, from_zero)

    def keys_values(self, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The full key and value buffers of one layer, [B, Hkv, max_len, D]."""
        return self.k[layer], self.v[layer]

    def attend(
        self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, input_pos: torch.Tensor
    ) -> torch.Tensor:
        """Store this chunk's k/v, then attend q [B, H, T, D] causally over everything stored."""
        t = q.shape[2]
        from_zero = t > 1 and CAUSAL_PREFILL and self._fills_from_zero(input_pos)
        self.store(layer, k, v, input_pos, from_zero)
        if q.is_cuda and t == 1 and q.shape[-1] in (32, 64, 128, 256):
            out = self._cuda_decode_attention(layer, q, input_pos)
            if out is not None:
                return out
        keys, values = self.keys_values(layer)
        gqa = q.shape[1] != keys.shape[1]
        if from_zero:
            # Nothing stored beyond this chunk counts: a causal attention over its own t positions, which
            # takes the flash kernels (a boolean mask over all max_len positions does not; H200, 2048 tokens).
            keys, values = keys[:, :, :t].to(q.dtype), values[:, :, :t].to(q.dtype)
            return F.scaled_dot_product_attention(q, keys, values, is_causal=True, enable_gqa=gqa)
        mask = self.positions[None, :] <= input_pos[:, None]  # [T, max_len]
        return F.scaled_dot_product_attention(
            q, keys.to(q.dtype), values.to(q.dtype), attn_mask=mask, enable_gqa=gqa
        )

    def mark_first_chunk(self, input_pos: torch.Tensor) -> None:
        """Declare input_pos to hold 0, 1, ..., T - 1 without reading it (a graph captured for first chunks)."""
        self._pos_checked = (input_pos, True)

    def _fills_from_zero(self, input_pos: torch.Tensor) -> bool:
        """Whether input_pos is 0, 1, ..., T - 1 (a prompt's first chunk); asked once per forward, not per layer."""
        if self._pos_checked is not None and self._pos_checked[0] is input_pos:
            return self._pos_checked[1]
        if input_pos.is_cuda and torch.cuda.is_current_stream_capturing():
            return False  # no host read during graph capture: the masked form is exact as well
        first, last = torch.stack([input_pos[0], input_pos[-1]]).tolist()  # one host read a forward
        fresh = first == 0 and last == input_pos.numel() - 1
        self._pos_checked = (input_pos, fresh)
        return fresh

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
