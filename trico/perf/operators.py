"""FLOPs and bytes of every operator of a Llama-family forward pass, for one prefill or one decode step.

Counts are per device under tensor parallelism. Each `Op` is one kernel shape that runs `count` times per
step (e.g. once per layer), so achievable bandwidth can depend on the size of one transfer.
"""

from __future__ import annotations

from dataclasses import dataclass

from trico.config import ModelConfig
from trico.errors import TricoError
from trico.perf.scheme import SchemeLike, compute_precision, kernel_format, layer_groups

ACT_BYTES = 2  # activations between kernels are bf16/fp16
SCALE_BYTES = 2  # fp16 scales (KV INT8 keeps one per token and head)

OP_KINDS = ("linear", "attention", "norm", "elementwise", "embedding", "allreduce")


@dataclass(frozen=True)
class Op:
    """One operator instance of a step: its work, and how many times it runs per step."""

    name: str
    """e.g. 'qkv_proj', 'attention', 'lm_head'."""
    kind: str
    """One of OP_KINDS."""
    count: int
    """Instances per step (n_layers for per-layer operators)."""
    flops: float
    """Floating-point (or integer) operations of one instance."""
    bytes: float
    """Device-memory bytes read + written by one instance (interconnect bytes for 'allreduce')."""
    precision: str = "bf16"
    """Compute precision of its math (a key of Hardware.peak_TFLOPs)."""
    weight_elems: float = 0.0
    """Weights one instance of a linear reads (packed or 16-bit); 0 for other operators."""
    fmt: str | None = None
    """Kernel format of a linear's weights ('bf16' for 16-bit ones); None for other operators."""
    rows: int = 0
    """Rows of the activation matrix a linear multiplies (batch x new tokens)."""
    kernels: int = 1
    """Kernel launches per instance."""

    @property
    def intensity(self) -> float:
        """Arithmetic intensity in FLOP per byte."""
        return self.flops / self.bytes if self.bytes else float("inf")


def _kv_bytes_per_elem(scheme: SchemeLike, head_dim: int) -> float:
    bits = scheme.kv_bits
    if bits >= 16:
        return 2.0
    return bits / 8 + SCALE_BYTES / head_dim


def check_tp(config: ModelConfig, tp: int) -> None:
    """Refuse tensor-parallel degrees the model's heads and MLP width do not divide."""
    if tp == 1:
        return
    if config.n_heads % tp or config.hidden_dim % tp:
        raise TricoError(
            f"tensor parallelism tp={tp} does not divide {config.name}'s n_heads={config.n_heads} "
            f"and hidden_dim={config.hidden_dim}"
        )
    if config.n_kv_heads % tp and tp % config.n_kv_heads:
        raise TricoError(f"tp={tp} and n_kv_heads={config.n_kv_heads} must divide one another")


def _linear(name: str, m: int, k: int, n: int, scheme: SchemeLike, count: int, quantized: bool) -> Op:
    if quantized:
        bits = scheme.bits_per_weight(k)
        fmt = kernel_format(scheme)
        prec = compute_precision(scheme)
        act_in = scheme.act_bits / 8
    else:
        bits, fmt, prec, act_in = 16.0, "bf16", "bf16", ACT_BYTES
    weight_bytes = n * k * bits / 8
    return Op(
        name=name,
        kind="linear",
        count=count,
        flops=2.0 * m * n * k,
        bytes=weight_bytes + m * k * act_in + m * n * ACT_BYTES,
        precision=prec,
        weight_elems=float(n * k),
        fmt=fmt,
        rows=m,
    )


def step_ops(
    config: ModelConfig,
    scheme: SchemeLike,
    batch: int,
    new_tokens: int,
    kv_len: float,
    prefill: bool,
    tp: int = 1,
) -> list[Op]:
    """Operators of one forward step: `batch` sequences each adding `new_tokens` positions.

    `kv_len` is the number of cached positions each new token attends to besides itself (0 for a fresh
    prefill; the kept context for decode). In prefill attention is causal over the new tokens and only the
    last position of each sequence goes through lm_head.
    """
    check_tp(config, tp)
    L, d, hd = config.n_layers, config.dim, config.head_dim
    hq = config.n_heads // tp
    hkv = max(1, config.n_kv_heads // tp)
    hidden = config.hidden_dim // tp
    m = batch * new_tokens
    q_out, kv_out = hq * hd, hkv * hd
    kvb = _kv_bytes_per_elem(scheme, hd)
    head_quantized = bool(getattr(scheme, "quantize_head", False))

    ops = [
        Op("embedding", "embedding", 1, 0.0, m * d * ACT_BYTES * 2),
        Op("attn_norm", "norm", L, 4.0 * m * d, 2 * m * d * ACT_BYTES + d * ACT_BYTES),
        Op("rope", "elementwise", L, 6.0 * m * (q_out + kv_out), 2 * m * (q_out + kv_out) * ACT_BYTES),
    ]
    groups = layer_groups(scheme, L)
    # Layers stored in different schemes (per-layer precision) are separate operator groups.
    for s, n in groups:
        ops.append(_linear("qkv_proj", m, d, q_out + 2 * kv_out, s, n, quantized=True))
    # Attention: every new token reads the cached K/V it attends to; causal prefill attends to half of the
    # new block on average (plus itself).
    attended = kv_len + (new_tokens + 1) / 2 if prefill else kv_len + new_tokens
    attn_flops = 4.0 * m * q_out * attended
    kv_read = batch * kv_len * 2 * kv_out * kvb
    new_kv = m * 2 * kv_out * (ACT_BYTES + kvb)  # read new K/V, write them in cache format
    qo = 2 * m * q_out * ACT_BYTES
    ops.append(Op("attention", "attention", L, attn_flops, kv_read + new_kv + qo, kernels=2))
    ops += [_linear("o_proj", m, q_out, d, s, n, quantized=True) for s, n in groups]
    if tp > 1:
        ops.append(Op("allreduce_attn", "allreduce", L, 0.0, m * d * ACT_BYTES))
    ops += [
        Op("residual", "elementwise", 2 * L, 1.0 * m * d, 3 * m * d * ACT_BYTES),
        Op("ffn_norm", "norm", L, 4.0 * m * d, 2 * m * d * ACT_BYTES + d * ACT_BYTES),
        Op("silu_mul", "elementwise", L, 4.0 * m * hidden, 3 * m * hidden * ACT_BYTES),
    ]
    ops += [_linear("gate_up_proj", m, d, 2 * hidden, s, n, quantized=True) for s, n in groups]
    ops += [_linear("down_proj", m, hidden, d, s, n, quantized=True) for s, n in groups]
    if tp > 1:
        ops.append(Op("allreduce_mlp", "allreduce", L, 0.0, m * d * ACT_BYTES))
    head_m = batch if prefill else m
    ops.append(Op("final_norm", "norm", 1, 4.0 * head_m * d, 2 * head_m * d * ACT_BYTES + d * ACT_BYTES))
    ops.append(_linear("lm_head", head_m, d, config.vocab_size // tp, scheme, 1, quantized=head_quantized))
    return ops


def weight_bytes(config: ModelConfig, scheme: SchemeLike, tp: int = 1) -> dict[str, float]:
    """Bytes of stored weights per device, split into packed linears, embedding table, lm_head and norms."""
    check_tp(config, tp)
    d, hd = config.dim, config.head_dim
    hq, hkv = config.n_heads // tp, max(1, config.n_kv_heads // tp)
    hidden = config.hidden_dim // tp

    def per_layer(s: SchemeLike) -> float:
        return (
            d * (hq + 2 * hkv) * hd * s.bits_per_weight(d)
            + hq * hd * d * s.bits_per_weight(hq * hd)
            + 2 * d * hidden * s.bits_per_weight(d)
            + hidden * d * s.bits_per_weight(hidden)
        ) / 8

    embed = config.vocab_size * d * ACT_BYTES / tp
    head_bits = scheme.bits_per_weight(d) if getattr(scheme, "quantize_head", False) else 16.0
    head = 0.0 if config.tie_embeddings and head_bits == 16.0 else config.vocab_size * d * head_bits / 8 / tp
    norms = (2 * config.n_layers + 1) * d * ACT_BYTES
    linears = sum(n * per_layer(s) for s, n in layer_groups(scheme, config.n_layers))
    return {"linears": linears, "embedding": embed, "lm_head": head, "norms": norms}


def kv_cache_bytes(
    config: ModelConfig, scheme: SchemeLike, batch: int, positions: float, tp: int = 1
) -> float:
    """Bytes of the KV cache per device for `batch` sequences of `positions` cached positions."""
    hkv = max(1, config.n_kv_heads // tp)
    return (
        batch
        * positions
        * config.n_layers
        * 2
        * hkv
        * config.head_dim
        * _kv_bytes_per_elem(scheme, config.head_dim)
    )


def activation_bytes(config: ModelConfig, batch: int, tokens: int, tp: int = 1) -> float:
    """Peak transient activation bytes of one forward over `tokens` positions per sequence."""
    m = batch * tokens
    widest = max(config.q_dim + 2 * config.kv_dim, 3 * config.hidden_dim) // tp
    logits = batch * config.vocab_size // tp * 4  # fp32 logits of the last position
    return m * (2 * config.dim + widest) * ACT_BYTES + logits
