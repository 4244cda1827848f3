"""trico checkpoints: a directory with model.safetensors (packed QLinear buffers + high-precision tensors),
tokenizer.json / tokenizer_config.json and a trico.json manifest (scheme, per-layer formats, versions,
calibration settings). Written to a temporary directory and renamed, so a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from trico.config import ModelConfig
from trico.errors import TricoError
from trico.io.loader import LoadedModel
from trico.io.tokenizer import Tokenizer

MANIFEST = "trico.json"
WEIGHTS = "model.safetensors"
FORMAT_VERSION = 1
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def _versions() -> dict[str, str]:
    import safetensors

    import trico

    return {"trico": trico.__version__, "torch": torch.__version__, "safetensors": safetensors.__version__}


def check_output_dir(out_dir: str | Path) -> Path:
    """Refuse an existing non-empty output directory (or a file) before any work is done."""
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TricoError(f"{out}: output directory exists and is not empty; choose a new one")
    return out


def _tokenizer_files(tokenizer: Tokenizer, directory: Path) -> None:
    directory.joinpath("tokenizer.json").write_text(tokenizer.backend.to_str())

    def tok(tid: int | None) -> str | None:
        return tokenizer.backend.id_to_token(tid) if tid is not None else None

    cfg = {
        "bos_token": tok(tokenizer.bos_token_id),
        "eos_token": tok(tokenizer.eos_token_id),
        "add_bos_token": tokenizer.add_bos,
        "chat_template": tokenizer.chat_template,
    }
    directory.joinpath("tokenizer_config.json").write_text(json.dumps(cfg, indent=1))


def state_dict_for_disk(model: nn.Module, float_dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Model state with shared (tied) tensors once and high-precision floats cast to float_dtype."""
    from trico.quant.qlinear import QLinear

    packed = {
        f"{n}.{b}" for n, m in model.named_modules() if isinstance(m, QLinear) for b, _ in m.named_buffers()
    }
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in model.state_dict().items():
        if t.untyped_storage().data_ptr() in seen and name not in packed:
            continue  # tied lm_head: the embedding table is stored once
        seen.add(t.untyped_storage().data_ptr())
        if name not in packed and t.is_floating_point():
            t = t.to(float_dtype)
        out[name] = t.detach().cpu().contiguous()
    return out


def save_trico_checkpoint(
    model: nn.Module,
    config: ModelConfig,
    tokenizer: Tokenizer | None,
    out_dir: str | Path,
    source: str = "",
    float_dtype: torch.dtype = torch.float16,
    extra: dict | None = None,
) -> Path:
    """Write a (quantized or float) model as a trico checkpoint directory; returns its path."""
    from safetensors.torch import save_file

    from trico.quant.api import QuantInfo

    out = check_output_dir(out_dir)
    info: QuantInfo | None = getattr(model, "trico_quant", None)
    dtype_name = next(k for k, v in _DTYPES.items() if v == float_dtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        sd = state_dict_for_disk(model, float_dtype)
        save_file(sd, str(tmp / WEIGHTS), metadata={"format": "pt", "producer": "trico"})
        if tokenizer is not None:
            _tokenizer_files(tokenizer, tmp)
        manifest = {
            "format": "trico-checkpoint",
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": _versions(),
            "source": source,
            "config": config.to_dict(),
            "float_dtype": dtype_name,
            "quantization": info.to_dict() if info is not None else None,
            "files": {p.name: p.stat().st_size for p in sorted(tmp.iterdir())},
            **(extra or {}),
        }
        manifest["bytes_on_disk"] = sum(manifest["files"].values())
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        if out.exists():
            out.rmdir()  # empty (checked above); rename needs the name free
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is meant to be shared
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_manifest(path: str | Path) -> dict:
    """Read and check trico.json of a checkpoint directory."""
    mpath = Path(path) / MANIFEST
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TricoError(f"{mpath}: unreadable trico manifest ({exc})") from None
    if manifest.get("format") != "trico-checkpoint":
        raise TricoError(f"{mpath}: not a trico checkpoint manifest")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise TricoError(
            f"{mpath}: format version {manifest['format_version']} is newer than this trico reads"
        )
    return manifest


def load_trico_checkpoint(
    path: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> LoadedModel:
    """Load a trico checkpoint directory: the model is rebuilt with the QLinear layers the manifest lists."""
    from trico.engine.kv_cache_int8 import Int8KVCache
    from trico.io.hf_reader import read_safetensors
    from trico.io.tokenizer import tokenizer_from_hf_dir
    from trico.models.llama import Transformer
    from trico.quant.api import QuantInfo, set_module
    from trico.quant.qlinear import QLinear

    path = Path(path)
    manifest = read_manifest(path)
    config = ModelConfig.from_dict(manifest["config"])
    quant = manifest.get("quantization")
    with torch.device("meta"):
        model = Transformer(config)
    model = model.to_empty(device=device)
    if config.tie_embeddings:
        model.lm_head.weight = model.model.embed_tokens.weight
    for name, spec in (quant or {}).get("layers", {}).items():
        q = QLinear(
            spec["in_features"],
            spec["out_features"],
            spec["fmt"],
            spec["group_size"],
            spec["symmetric"],
            device,
        )
        set_module(model, name, q)
    sd = read_safetensors(path / WEIGHTS)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    missing = [m for m in missing if not (config.tie_embeddings and m == "lm_head.weight")]
    if missing or unexpected:
        raise TricoError(
            f"{path}: weights do not match the manifest: missing {missing[:3]}, unexpected {unexpected[:3]}"
        )
    model = model.to(dtype=dtype).eval()
    extra: dict = {"manifest": manifest}
    if quant is not None:
        info = QuantInfo(**quant)
        model.trico_quant = info
        extra["scheme"] = info.scheme
        if info.kv_bits == 8:
            extra["cache_factory"] = Int8KVCache
    tok = tokenizer_from_hf_dir(path) if (path / "tokenizer.json").is_file() else None
    return LoadedModel(model, tok, config, path, "trico", extra)
