"""The Llama family (Llama-2, Llama-3/3.1, Mistral-style GQA, SmolLM2) in plain PyTorch.

Module and parameter names follow Hugging Face's `LlamaForCausalLM`, so a canonical state dict
loads with `load_state_dict` as is. This file holds no kernels, no quantization and no cache
policy: attention over past tokens is delegated to a cache object (see `KVCacheLike`), which the
engine provides, and quantization swaps `nn.Linear` modules after the model is built.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from trico.config import ModelConfig


class KVCacheLike(Protocol):
    """What the model needs from a KV cache: store this step's k/v and attend over the prefix."""

    def attend(
        self, layer: int, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, input_pos: torch.Tensor
    ) -> torch.Tensor:
        """Write k, v [B, Hkv, T, D] at positions input_pos [T]; return attention of q [B, H, T, D]."""
        ...


class RMSNorm(nn.Module):
    """Root-mean-square layer norm, computed in fp32 like the reference implementations."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalize the last dimension and scale it."""
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rope_inv_freq(config: ModelConfig) -> torch.Tensor:
    """Inverse RoPE frequencies [head_dim / 2], with Llama-3.1 scaling applied when configured."""
    hd = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    s = config.rope_scaling
    if s is None:
        return inv_freq.float()
    low_wavelen = s.original_max_position / s.low_freq_factor
    high_wavelen = s.original_max_position / s.high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    smooth = (s.original_max_position / wavelen - s.low_freq_factor) / (
        s.high_freq_factor - s.low_freq_factor
    )
    blended = (1 - smooth) * inv_freq / s.factor + smooth * inv_freq
    out = torch.where(wavelen > low_wavelen, inv_freq / s.factor, inv_freq)
    mid = (wavelen <= low_wavelen) & (wavelen >= high_wavelen)
    return torch.where(mid, blended, out).float()


class RotaryEmbedding(nn.Module):
    """cos/sin tables for every position, kept in fp32 whatever dtype the model is cast to."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        cos, sin = self._tables(torch.empty(0).device)  # meta under build_model's meta context
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def _tables(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device.type == "meta":
            shape = (self.config.max_seq_len, self.config.head_dim)
            return torch.empty(shape, device=device), torch.empty(shape, device=device)
        inv_freq = rope_inv_freq(self.config).to(device)
        t = torch.arange(self.config.max_seq_len, device=device, dtype=torch.float32)
        freqs = torch.outer(t, inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos(), emb.sin()

    def _apply(self, fn, recurse=True):  # noqa: ANN001 - nn.Module signature
        # Casting the model to bf16 must not round the tables: rebuild them in fp32 on the new device.
        super()._apply(fn, recurse)
        if self.cos.device.type != "meta":
            self.cos, self.sin = self._tables(self.cos.device)
        return self

    def forward(self, input_pos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin for the given positions, shape [T, head_dim]."""
        return self.cos[input_pos], self.sin[input_pos]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x [B, H, T, D] by the per-position angles (the 'rotate half' layout of HF Llama)."""
    xf = x.float()
    half = xf.shape[-1] // 2
    rotated = torch.cat([-xf[..., half:], xf[..., :half]], dim=-1)
    return (xf * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    """Multi-head attention with grouped key/value heads."""

    def __init__(self, config: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads, self.n_kv_heads, self.head_dim = config.n_heads, config.n_kv_heads, config.head_dim
        self.q_proj = nn.Linear(config.dim, config.q_dim, bias=False)
        self.k_proj = nn.Linear(config.dim, config.kv_dim, bias=False)
        self.v_proj = nn.Linear(config.dim, config.kv_dim, bias=False)
        self.o_proj = nn.Linear(config.q_dim, config.dim, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        input_pos: torch.Tensor,
        cache: KVCacheLike | None,
    ) -> torch.Tensor:
        """x [B, T, dim] -> [B, T, dim]; causal over the cache prefix plus this chunk."""
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is None:
            out = F.scaled_dot_product_attention(
                q, k, v, is_causal=True, enable_gqa=self.n_heads != self.n_kv_heads
            )
        else:
            out = cache.attend(self.layer_idx, q, k, v, input_pos)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))


class MLP(nn.Module):
    """SiLU-gated feed-forward network."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(config.dim, config.hidden_dim, bias=False)
        self.up_proj = nn.Linear(config.dim, config.hidden_dim, bias=False)
        self.down_proj = nn.Linear(config.hidden_dim, config.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """down(silu(gate(x)) * up(x))."""
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-norm residual block: attention then MLP."""

    def __init__(self, config: ModelConfig, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.dim, config.norm_eps)
        self.self_attn = Attention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.dim, config.norm_eps)
        self.mlp = MLP(config)

    def forward(self, x, cos, sin, input_pos, cache):  # noqa: ANN001 - same as Attention.forward
        """One block over hidden states x [B, T, dim]."""
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, input_pos, cache)
        return h + self.mlp(self.post_attention_layernorm(h))


class LlamaModel(nn.Module):
    """Embedding, decoder stack and final norm (HF's `model.` prefix)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.dim)
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)


class Transformer(nn.Module):
    """A Llama-family causal language model with HF-compatible parameter names."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.model = LlamaModel(config)
        self.lm_head = nn.Linear(config.dim, config.vocab_size, bias=False)
        self.rotary = RotaryEmbedding(config)
        if config.tie_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(
        self,
        tokens: torch.Tensor,
        input_pos: torch.Tensor | None = None,
        cache: KVCacheLike | None = None,
        last_only: bool = False,
        last_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits [B, T, vocab] (or [B, 1, vocab] with last_only) for tokens [B, T] at input_pos [T].

        Without a cache the chunk attends causally to itself (positions 0..T-1), which is what
        perplexity evaluation needs; with a cache the chunk is appended at input_pos. With last_only and
        `last_index` (a device tensor [1]) the logits are those of that position instead of the last.
        """
        if input_pos is None:
            input_pos = torch.arange(tokens.shape[1], device=tokens.device)
        cos, sin = self.rotary(input_pos)
        h = self.model.embed_tokens(tokens)
        for layer in self.model.layers:
            h = layer(h, cos, sin, input_pos, cache)
        if last_only:
            h = h[:, -1:, :] if last_index is None else h.index_select(1, last_index)
        return head_logits(self.lm_head, self.model.norm(h))

    def prefill(
        self,
        tokens: torch.Tensor,
        input_pos: torch.Tensor,
        cache: KVCacheLike,
        last_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run a prompt chunk through the cache; return the last position's logits [B, vocab].

        A chunk right-padded to a fixed length (a replayed graph's shape) passes the index of its last real
        token as `last_index` [1]: causal attention keeps the padding out of the real tokens' results, and
        what it writes into the cache past them is overwritten before anything attends to it.
        """
        return self.forward(tokens, input_pos, cache, last_only=True, last_index=last_index)[:, -1, :]

    def decode(self, token: torch.Tensor, input_pos: torch.Tensor, cache: KVCacheLike) -> torch.Tensor:
        """One decode step: token [B, 1] at input_pos [1]; logits [B, vocab]. Graph-capturable."""
        return self.forward(token, input_pos, cache)[:, -1, :]


def head_logits(head: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """fp32 logits of the final hidden states: the 16-bit products summed in fp32 and not rounded back.

    Rounded to bf16, logits near 14 are 1/16 apart, so SmolLM2's greedy argmax meets exact ties
    (4 of 64 steps in a measured continuation) that two correct implementations break differently.
    Here a 16-bit nn.Linear head multiplies upcast copies (the fused engine swaps in a kernel that
    reads the 16-bit weight once); other heads (a quantized one, the engine's) are cast after their forward.
    """
    if type(head) is nn.Linear and h.dtype in (torch.bfloat16, torch.float16):
        return F.linear(h.float(), head.weight.float(), None if head.bias is None else head.bias.float())
    return head(h).float()


def build_model(
    config: ModelConfig,
    state_dict: dict[str, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> Transformer:
    """Build a model; with a canonical state dict its weights are loaded (strictly), else random init."""
    with torch.device("meta"):
        model = Transformer(config)
    model = model.to_empty(device=device)
    if config.tie_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    if state_dict is None:
        init_random_(model, seed=0)
    else:
        sd = {k: v for k, v in state_dict.items() if not (config.tie_embeddings and k == "lm_head.weight")}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        missing = [m for m in missing if not (config.tie_embeddings and m == "lm_head.weight")]
        if missing or unexpected:
            from trico.errors import TricoError

            raise TricoError(
                f"checkpoint does not match {config.name}: missing {missing[:3]}, unexpected {unexpected[:3]}"
            )
    return model.to(dtype=dtype).eval()


@torch.no_grad()
def init_random_(model: Transformer, seed: int = 0, std: float = 0.02) -> None:
    """Fill every parameter with reproducible random values (norms near 1); for tests and benchmarks."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            values = 1.0 + 0.1 * torch.randn(p.shape, generator=gen)
        else:
            values = std * torch.randn(p.shape, generator=gen)
        p.copy_(values.to(p.device, p.dtype))
