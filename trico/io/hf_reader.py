"""Read Hugging Face Llama-family checkpoint directories (config.json + single or sharded safetensors)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from trico.config import ModelConfig, RopeScaling
from trico.errors import TricoError

SUPPORTED_HF_ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM")


def config_from_hf(d: dict, name: str) -> ModelConfig:
    """Translate an HF config.json dict to a ModelConfig."""
    archs = d.get("architectures") or [d.get("model_type", "?")]
    if not any(a in SUPPORTED_HF_ARCHITECTURES for a in archs):
        raise TricoError(
            f"{name}: unsupported architecture {archs[0]!r}; trico runs {', '.join(SUPPORTED_HF_ARCHITECTURES)}"
        )
    try:
        scaling = None
        rs = d.get("rope_scaling") or {}
        if rs.get("rope_type", rs.get("type")) == "llama3":
            scaling = RopeScaling(
                factor=float(rs["factor"]),
                low_freq_factor=float(rs["low_freq_factor"]),
                high_freq_factor=float(rs["high_freq_factor"]),
                original_max_position=int(rs["original_max_position_embeddings"]),
            )
        elif rs:
            raise TricoError(
                f"{name}: RoPE scaling type {rs.get('rope_type', rs.get('type'))!r} is not supported"
            )
        eos = d.get("eos_token_id", 2)
        n_heads = int(d["num_attention_heads"])
        return ModelConfig(
            name=name,
            vocab_size=int(d["vocab_size"]),
            dim=int(d["hidden_size"]),
            n_layers=int(d["num_hidden_layers"]),
            n_heads=n_heads,
            n_kv_heads=int(d.get("num_key_value_heads") or n_heads),
            hidden_dim=int(d["intermediate_size"]),
            head_dim=int(d.get("head_dim") or 0),
            norm_eps=float(d.get("rms_norm_eps", 1e-5)),
            rope_theta=float(d.get("rope_theta", 10000.0)),
            rope_scaling=scaling,
            max_seq_len=int(d.get("max_position_embeddings", 4096)),
            tie_embeddings=bool(d.get("tie_word_embeddings", False)),
            bos_token_id=d.get("bos_token_id"),
            eos_token_ids=tuple(eos) if isinstance(eos, list) else (int(eos),),
        )
    except KeyError as exc:
        raise TricoError(f"{name}: config.json lacks {exc.args[0]!r}") from None


def _safetensors_files(directory: Path) -> list[Path]:
    index = directory / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, KeyError) as exc:
            raise TricoError(f"{index}: malformed index file ({exc})") from None
        files = sorted({directory / f for f in weight_map.values()})
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise TricoError(f"{directory}: shards listed in the index are missing: {', '.join(missing)}")
        return files
    files = sorted(directory.glob("*.safetensors"))
    if not files:
        pickles = [p.name for p in directory.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
        if pickles:
            raise TricoError(
                f"{directory}: only pickle checkpoints ({pickles[0]}); trico refuses pickle files because loading "
                "them can run arbitrary code; convert to safetensors"
            )
        raise TricoError(f"{directory}: no *.safetensors files")
    return files


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Read every tensor of one safetensors file (a truncated or corrupt file is a clear error)."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:
        raise TricoError(
            f"{path}: corrupt or truncated safetensors file ({type(exc).__name__}: {exc})"
        ) from None


def load_hf_dir(directory: str | Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Read an HF model directory into (ModelConfig, canonical fp32 state dict)."""
    directory = Path(directory)
    cfg_path = directory / "config.json"
    if not cfg_path.is_file():
        raise TricoError(f"{directory}: not a model directory (no config.json)")
    try:
        config = config_from_hf(json.loads(cfg_path.read_text()), directory.name)
    except json.JSONDecodeError as exc:
        raise TricoError(f"{cfg_path}: invalid JSON ({exc})") from None
    state_dict: dict[str, torch.Tensor] = {}
    for f in _safetensors_files(directory):
        state_dict.update(read_safetensors(f))
    state_dict = {k: v.float() for k, v in state_dict.items() if not k.endswith("rotary_emb.inv_freq")}
    return config, state_dict
