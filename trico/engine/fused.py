"""CUDA fast path of the Llama block: the same math as trico.models.llama, through Triton kernels.

`fuse_model_(model)` swaps every DecoderLayer for a FusedDecoderLayer that keeps the same child
modules (so parameter names, QLinear dispatch and state dicts are unchanged) and, on CUDA tensors,
runs RMSNorm with the residual add fused, RoPE in one kernel on the projections' own layout and
the SiLU gate in one kernel; on CPU tensors it calls the original layer code, so results there
are the reference ones. Attention over the cache stays the cache's job (its CUDA T == 1 path is
the flash-decoding kernel).
"""

from __future__ import annotations

import torch
from torch import nn

from trico.models.llama import DecoderLayer, Transformer


class FusedDecoderLayer(nn.Module):
    """A DecoderLayer whose CUDA forward uses fused kernels; CPU forward is the original one."""

    def __init__(self, layer: DecoderLayer) -> None:
        super().__init__()
        self.input_layernorm = layer.input_layernorm
        self.self_attn = layer.self_attn
        self.post_attention_layernorm = layer.post_attention_layernorm
        self.mlp = layer.mlp

    def forward(self, x, cos, sin, input_pos, cache):  # noqa: ANN001 - DecoderLayer.forward's signature
        """One block over hidden states x [B, T, dim]."""
        from trico.kernels import kernels_enabled

        if not x.is_cuda or not kernels_enabled():
            return DecoderLayer.forward(self, x, cos, sin, input_pos, cache)
        from trico.kernels.activation import silu_mul
        from trico.kernels.rmsnorm import rmsnorm
        from trico.kernels.rope import rope

        attn, mlp = self.self_attn, self.mlp
        b, t, _ = x.shape
        xn, _ = rmsnorm(x.contiguous(), self.input_layernorm.weight, self.input_layernorm.eps)
        q = rope(attn.q_proj(xn).view(b, t, attn.n_heads, attn.head_dim), cos, sin)
        k = rope(attn.k_proj(xn).view(b, t, attn.n_kv_heads, attn.head_dim), cos, sin)
        v = attn.v_proj(xn).view(b, t, attn.n_kv_heads, attn.head_dim)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if cache is None:
            o = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, enable_gqa=attn.n_heads != attn.n_kv_heads
            )
        else:
            o = cache.attend(attn.layer_idx, q, k, v, input_pos)
        o = attn.o_proj(o.transpose(1, 2).reshape(b, t, attn.n_heads * attn.head_dim))
        hn, h = rmsnorm(
            o.contiguous(),
            self.post_attention_layernorm.weight,
            self.post_attention_layernorm.eps,
            residual=x.contiguous(),
        )
        return h + mlp.down_proj(silu_mul(mlp.gate_proj(hn), mlp.up_proj(hn)))


def fuse_model_(model: Transformer) -> Transformer:
    """Swap the decoder layers for FusedDecoderLayer in place (idempotent); returns the model."""
    layers = model.model.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, DecoderLayer):
            layers[i] = FusedDecoderLayer(layer)
    return model
