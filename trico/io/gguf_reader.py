"""Read GGUF files (llama.cpp's format) into a ModelConfig, a canonical HF-named state dict and a tokenizer spec."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trico.config import ModelConfig, RopeScaling
from trico.errors import TricoError

SUPPORTED_ARCHITECTURES = ("llama", "mistral")

# GGUF tensor name -> canonical (HF Llama) name; {i} is the layer index.
_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
# Tensors that carry no weights of ours (Llama-3.1 files store RoPE factors we recompute from metadata).
_IGNORED = {"rope_freqs.weight"}


@dataclass
class GGUFTokenizerSpec:
    """Everything needed to rebuild the tokenizer from GGUF metadata."""

    model: str
    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str | None
    bos_token_id: int | None
    eos_token_id: int | None
    add_bos: bool
    chat_template: str | None
    scores: list[float] = field(default_factory=list)


@dataclass
class GGUFModel:
    """A GGUF file read into trico's canonical form."""

    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    tokenizer: GGUFTokenizerSpec
    tensor_types: dict[str, str]
    metadata: dict[str, object]


def canonical_name(gguf_name: str) -> str | None:
    """Map a GGUF tensor name to the HF Llama name (None for tensors trico ignores)."""
    if gguf_name in _IGNORED:
        return None
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)\.weight", gguf_name)
    if m and m.group(2) in _LAYER_NAMES:
        return f"model.layers.{m.group(1)}.{_LAYER_NAMES[m.group(2)]}.weight"
    raise TricoError(f"unexpected tensor {gguf_name!r} in GGUF file (not a Llama-family tensor)")


def unpermute_rope(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Undo llama.cpp's Q/K row permutation (interleaved RoPE pairs) to get HF's rotate-half layout."""
    rows, cols = w.shape
    return w.reshape(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def permute_rope(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """HF rotate-half row layout -> llama.cpp interleaved layout (inverse of unpermute_rope)."""
    rows, cols = w.shape
    return w.reshape(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


def _field(reader, key: str, default=None):  # noqa: ANN001, ANN202 - gguf reader types
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


def _open(path: Path):  # noqa: ANN202
    import gguf

    try:
        return gguf.GGUFReader(str(path), "r")
    except Exception as exc:  # the gguf package raises many types on a bad file
        raise TricoError(f"{path}: not a readable GGUF file ({type(exc).__name__}: {exc})") from None


def read_gguf_config(reader, path: Path) -> ModelConfig:  # noqa: ANN001
    """Build a ModelConfig from GGUF metadata."""
    arch = _field(reader, "general.architecture")
    if arch not in SUPPORTED_ARCHITECTURES:
        raise TricoError(
            f"{path}: unsupported architecture {arch!r}; trico runs {', '.join(SUPPORTED_ARCHITECTURES)}"
        )
    need = ["block_count", "embedding_length", "feed_forward_length", "attention.head_count"]
    missing = [k for k in need if _field(reader, f"{arch}.{k}") is None]
    if missing:
        raise TricoError(f"{path}: GGUF metadata lacks {', '.join(f'{arch}.{k}' for k in missing)}")
    n_heads = int(_field(reader, f"{arch}.attention.head_count"))
    dim = int(_field(reader, f"{arch}.embedding_length"))
    tokens = _field(reader, "tokenizer.ggml.tokens") or []
    names = {t.name for t in reader.tensors}
    scaling = None
    if _field(reader, f"{arch}.rope.scaling.type") == "llama3" or "rope_freqs.weight" in names:
        scaling = RopeScaling(
            factor=float(_field(reader, f"{arch}.rope.scaling.factor", 8.0)),
            low_freq_factor=float(_field(reader, f"{arch}.rope.scaling.low_freq_factor", 1.0)),
            high_freq_factor=float(_field(reader, f"{arch}.rope.scaling.high_freq_factor", 4.0)),
            original_max_position=int(_field(reader, f"{arch}.rope.scaling.original_context_length", 8192)),
        )
    eos = _field(reader, "tokenizer.ggml.eos_token_id")
    eot = _field(reader, "tokenizer.ggml.eot_token_id")
    eos_ids = tuple(int(t) for t in (eos, eot) if t is not None) or (2,)
    return ModelConfig(
        name=str(_field(reader, "general.name", path.stem)),
        vocab_size=int(_field(reader, f"{arch}.vocab_size", len(tokens) or 0)),
        dim=dim,
        n_layers=int(_field(reader, f"{arch}.block_count")),
        n_heads=n_heads,
        n_kv_heads=int(_field(reader, f"{arch}.attention.head_count_kv", n_heads)),
        hidden_dim=int(_field(reader, f"{arch}.feed_forward_length")),
        head_dim=int(_field(reader, f"{arch}.attention.key_length", dim // n_heads)),
        norm_eps=float(_field(reader, f"{arch}.attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=float(_field(reader, f"{arch}.rope.freq_base", 10000.0)),
        rope_scaling=scaling,
        max_seq_len=int(_field(reader, f"{arch}.context_length", 4096)),
        tie_embeddings="output.weight" not in names,
        bos_token_id=_field(reader, "tokenizer.ggml.bos_token_id"),
        eos_token_ids=eos_ids,
    )


def read_gguf_tokenizer(reader) -> GGUFTokenizerSpec:  # noqa: ANN001
    """Collect the tokenizer metadata of a GGUF file."""
    return GGUFTokenizerSpec(
        model=str(_field(reader, "tokenizer.ggml.model", "")),
        tokens=list(_field(reader, "tokenizer.ggml.tokens", [])),
        token_types=[int(t) for t in _field(reader, "tokenizer.ggml.token_type", [])],
        merges=list(_field(reader, "tokenizer.ggml.merges", [])),
        pre=_field(reader, "tokenizer.ggml.pre"),
        bos_token_id=_field(reader, "tokenizer.ggml.bos_token_id"),
        eos_token_id=_field(reader, "tokenizer.ggml.eos_token_id"),
        add_bos=bool(_field(reader, "tokenizer.ggml.add_bos_token", False)),
        chat_template=_field(reader, "tokenizer.chat_template"),
        scores=[float(s) for s in _field(reader, "tokenizer.ggml.scores", [])],
    )


def dequantize_tensor(tensor) -> np.ndarray:  # noqa: ANN001
    """Dequantize one GGUF tensor (any type the gguf package supports) to fp32, shape [rows, cols]."""
    from gguf import quants

    try:
        return np.asarray(quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
    except NotImplementedError:
        raise TricoError(
            f"GGUF tensor {tensor.name}: type {tensor.tensor_type.name} is not supported"
        ) from None


def load_gguf(path: str | Path, progress: bool = False) -> GGUFModel:
    """Read a GGUF file; every tensor is dequantized to fp32 under its canonical name."""
    path = Path(path)
    if not path.is_file():
        raise TricoError(f"{path}: no such file")
    reader = _open(path)
    config = read_gguf_config(reader, path)
    state_dict: dict[str, torch.Tensor] = {}
    types: dict[str, str] = {}
    tensors = reader.tensors
    if progress:
        from tqdm import tqdm

        tensors = tqdm(tensors, desc="loading GGUF", unit="tensor", leave=False)
    try:
        for t in tensors:
            name = canonical_name(t.name)
            if name is None:
                continue
            w = torch.from_numpy(dequantize_tensor(t).copy())
            if name.endswith("q_proj.weight"):
                w = unpermute_rope(w, config.n_heads)
            elif name.endswith("k_proj.weight"):
                w = unpermute_rope(w, config.n_kv_heads)
            state_dict[name] = w
            types[name] = t.tensor_type.name
    except TricoError:
        raise
    except Exception as exc:
        raise TricoError(
            f"{path}: corrupt or truncated GGUF tensor data ({type(exc).__name__}: {exc})"
        ) from None
    meta = {k: _field(reader, k) for k in ("general.name", "general.architecture", "general.file_type")}
    return GGUFModel(config, state_dict, read_gguf_tokenizer(reader), types, meta)
