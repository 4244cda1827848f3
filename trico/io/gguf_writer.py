"""Export a model (a trico checkpoint, usually) to GGUF so llama.cpp-family tools can run it.

Quantized layers whose layout has an exact GGUF counterpart are written bit for bit from trico's codes
and fp16 scales (no re-quantization): int8 with groups of 32 -> Q8_0, symmetric uint4 g32 -> Q4_0
(W = d (q - 8)), asymmetric uint4 g32 -> Q4_1 (W = d q + m), ternary with groups of 256 on rows that are
multiples of 256 -> TQ2_0 / TQ1_0. Every other layer is written as F16 of its dequantized weights and
the export says how many. W8A8 (activation quantization) has no GGUF counterpart and is refused.
Q/K rows are permuted to llama.cpp's interleaved RoPE layout.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trico.config import ModelConfig
from trico.errors import TricoError
from trico.io.gguf_reader import permute_rope

_LAYER_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}
_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}


def gguf_name(name: str) -> str:
    """Canonical (HF) tensor name -> GGUF name (the inverse of gguf_reader.canonical_name)."""
    if name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[name]
    parts = name.split(".")
    if len(parts) >= 5 and parts[0] == "model" and parts[1] == "layers":
        key = ".".join(parts[3:-1])
        if key in _LAYER_NAMES:
            return f"blk.{parts[2]}.{_LAYER_NAMES[key]}.{parts[-1]}"
    raise TricoError(f"tensor {name!r} has no GGUF name")


@dataclass
class ExportResult:
    """What export_gguf wrote."""

    out: Path
    bytes_on_disk: int
    type_counts: dict[str, int] = field(default_factory=dict)
    exact: list[str] = field(default_factory=list)
    """Tensors written from trico's codes bit for bit (the others are F16/F32)."""


def _fp16_bytes(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float16).contiguous().numpy().view(np.uint8)


def q8_0_blocks(codes: torch.Tensor, scales: torch.Tensor) -> np.ndarray:
    """Q8_0 rows [N, K/32 * 34] from int8 codes [N, K] and fp16 scales [N, K/32]."""
    n, k = codes.shape
    q = codes.cpu().numpy().astype(np.int8).view(np.uint8).reshape(n, k // 32, 32)
    d = _fp16_bytes(scales).reshape(n, k // 32, 2)
    return np.concatenate([d, q], axis=-1).reshape(n, -1)


def q4_blocks(codes: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor | None) -> np.ndarray:
    """Q4_0 (mins None) or Q4_1 rows from uint4 codes [N, K] and fp16 scales/mins [N, K/32].

    A block stores element j in the low nibble and element j + 16 in the high nibble of byte j.
    """
    n, k = codes.shape
    c = codes.cpu().numpy().astype(np.uint8).reshape(n, k // 32, 32)
    qs = c[..., :16] | (c[..., 16:] << 4)
    parts = [_fp16_bytes(scales).reshape(n, k // 32, 2)]
    if mins is not None:
        parts.append(_fp16_bytes(mins).reshape(n, k // 32, 2))
    return np.concatenate([*parts, qs], axis=-1).reshape(n, -1)


def _row_perm(name: str, config: ModelConfig) -> torch.Tensor | None:
    """Row order llama.cpp expects for q/k projections (None for other tensors)."""
    if name.endswith("q_proj.weight") or name.endswith("q_proj"):
        heads, rows = config.n_heads, config.q_dim
    elif name.endswith("k_proj.weight") or name.endswith("k_proj"):
        heads, rows = config.n_kv_heads, config.kv_dim
    else:
        return None
    return permute_rope(torch.arange(rows, dtype=torch.float64)[:, None], heads)[:, 0].long()


def _quantized_tensor(q, config: ModelConfig, layer: str):  # noqa: ANN001, ANN202 - QLinear
    """(array, GGML type or None for float, exact?) for one QLinear."""
    import gguf

    t = gguf.GGMLQuantizationType
    perm = _row_perm(layer, config)
    k, g = q.in_features, q.group_size

    def rows(x: torch.Tensor | None) -> torch.Tensor | None:
        return None if x is None or perm is None else x[perm]

    codes, scales, mins = q.codes(), q.scales, q.mins
    if perm is not None:
        codes, scales, mins = rows(codes), rows(scales), rows(mins)
    if q.fmt == "int8" and g == 32:
        return q8_0_blocks(codes, scales), t.Q8_0, True
    if q.fmt == "uint4" and g == 32:
        return (
            q4_blocks(codes, scales, mins if not q.symmetric else None),
            (t.Q4_0 if q.symmetric else t.Q4_1),
            True,
        )
    w = q.dequantize()
    if perm is not None:
        w = w[perm]
    if q.fmt in ("tern2", "tern1.6") and g == 256 and k % 256 == 0:
        qtype = t.TQ1_0 if q.fmt == "tern1.6" else t.TQ2_0
        arr = gguf.quants.quantize(w.numpy().astype(np.float32), qtype)
        # TQ types re-derive codes from max|w| per block, which is exactly trico's scale: check, don't assume
        back = gguf.quants.dequantize(arr, qtype)
        if np.array_equal(back, w.to(torch.float16).float().numpy()):
            return arr, qtype, True
    return w.to(torch.float16).numpy(), None, False


def _tokenizer_metadata(writer, tokenizer, manifest: dict) -> None:  # noqa: ANN001
    """Byte-level BPE vocabulary, merges and specials, rebuilt from the tokenizer's JSON."""
    spec = json.loads(tokenizer.backend.to_str())
    model = spec.get("model", {})
    if model.get("type") != "BPE":
        raise TricoError("GGUF export handles byte-level BPE tokenizers only")
    vocab: dict[str, int] = dict(model["vocab"])
    specials = set()
    for added in spec.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
        if added.get("special"):
            specials.add(added["id"])
    tokens = [""] * (max(vocab.values()) + 1)
    for tok, i in vocab.items():
        tokens[i] = tok
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    info = manifest.get("gguf_tokenizer") or {}
    writer.add_tokenizer_model(info.get("model") or "gpt2")
    if info.get("pre"):
        writer.add_tokenizer_pre(info["pre"])
    writer.add_token_list(tokens)
    writer.add_token_types([3 if i in specials else 1 for i in range(len(tokens))])
    writer.add_token_merges(merges)
    if tokenizer.bos_token_id is not None:
        writer.add_bos_token_id(tokenizer.bos_token_id)
    if tokenizer.eos_token_id is not None:
        writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_add_bos_token(bool(tokenizer.add_bos))
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _config_metadata(writer, config: ModelConfig) -> None:  # noqa: ANN001
    writer.add_name(config.name)
    writer.add_vocab_size(config.vocab_size)
    writer.add_context_length(config.max_seq_len)
    writer.add_embedding_length(config.dim)
    writer.add_block_count(config.n_layers)
    writer.add_feed_forward_length(config.hidden_dim)
    writer.add_head_count(config.n_heads)
    writer.add_head_count_kv(config.n_kv_heads)
    writer.add_key_length(config.head_dim)
    writer.add_value_length(config.head_dim)
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_layer_norm_rms_eps(config.norm_eps)
    writer.add_rope_freq_base(config.rope_theta)
    if config.rope_scaling is not None:
        s = config.rope_scaling
        writer.add_rope_scaling_type("llama3")
        writer.add_rope_scaling_factor(s.factor)
        writer.add_rope_scaling_orig_ctx_len(s.original_max_position)
        writer.add_float32("llama.rope.scaling.low_freq_factor", s.low_freq_factor)
        writer.add_float32("llama.rope.scaling.high_freq_factor", s.high_freq_factor)


def write_gguf(
    model: torch.nn.Module,
    config: ModelConfig,
    tokenizer,  # noqa: ANN001 - Tokenizer | None
    out: str | Path,
    manifest: dict | None = None,
    progress: bool = False,
) -> ExportResult:
    """Write a built (possibly quantized) model to a new GGUF file; nothing is left behind on failure."""
    import gguf

    from trico.quant.qlinear import QLinear

    out = Path(out).expanduser()
    if out.exists():
        raise TricoError(f"{out}: output file exists; choose a new name")
    if any(isinstance(m, QLinear) and m.fmt == "w8a8" for m in model.modules()):
        raise TricoError(
            "W8A8 (SmoothQuant) has no GGUF counterpart: GGUF cannot express activation quantization"
        )
    tensors: list[tuple[str, np.ndarray, object]] = []
    counts: Counter = Counter()
    exact: list[str] = []
    qmods = {n: m for n, m in model.named_modules() if isinstance(m, QLinear)}
    for name, q in qmods.items():
        arr, qtype, is_exact = _quantized_tensor(q, config, name)
        tensors.append((gguf_name(f"{name}.weight"), arr, qtype))
        counts[qtype.name if qtype is not None else "F16"] += 1
        if is_exact:
            exact.append(name)
    for name, p in model.state_dict().items():
        owner = name.rsplit(".", 1)[0]
        if owner in qmods or (config.tie_embeddings and name == "lm_head.weight"):
            continue
        w = p.detach().float().cpu()
        perm = _row_perm(name, config)
        if perm is not None:
            w = w[perm]
        # norms stay F32 (llama.cpp requires it); matrices are stored in F16
        arr = w.numpy() if w.dim() == 1 else w.to(torch.float16).numpy()
        tensors.append((gguf_name(name), arr, None))
        counts["F32" if w.dim() == 1 else "F16"] += 1
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = gguf.GGUFWriter(str(tmp), "llama")
        _config_metadata(writer, config)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32 if not qmods else gguf.LlamaFileType.GUESSED)
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        if tokenizer is not None:
            _tokenizer_metadata(writer, tokenizer, manifest or {})
        items = tensors
        if progress:
            from tqdm import tqdm

            items = tqdm(tensors, desc="writing GGUF", unit="tensor", leave=False)
        for name, arr, qtype in items:
            writer.add_tensor(name, arr, raw_dtype=qtype) if qtype is not None else writer.add_tensor(
                name, arr
            )
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ExportResult(out, out.stat().st_size, dict(counts), exact)


def export_gguf(model_spec: str, out: str | Path, progress: bool = True) -> ExportResult:
    """Load any model trico reads (a trico checkpoint usually) and write it as GGUF."""
    from trico.io.loader import load_model

    out = Path(out).expanduser()
    if out.exists():
        raise TricoError(f"{out}: output file exists; choose a new name")
    loaded = load_model(model_spec)
    manifest = loaded.extra.get("manifest", {})
    return write_gguf(loaded.model, loaded.config, loaded.tokenizer, out, manifest, progress)
