"""End to end: load a float checkpoint, calibrate if the method needs it, quantize, write a trico checkpoint."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from trico.errors import TricoError
from trico.quant.api import NEEDS_CALIBRATION, quantize
from trico.quant.schemes import parse


@dataclass
class QuantizeResult:
    """Where the checkpoint went and what it cost."""

    out: Path
    scheme: str
    seconds: float
    bytes_on_disk: int
    weight_bits: float
    n_layers: int
    high_precision: list[str]


def _gguf_tokenizer_info(path: Path) -> dict | None:
    from trico.io.gguf_reader import _open, read_gguf_tokenizer

    spec = read_gguf_tokenizer(_open(path))
    return {"model": spec.model, "pre": spec.pre}


def quantize_checkpoint(
    model_spec: str,
    scheme_name: str,
    out_dir: str | Path,
    calib_file: str | Path | None = None,
    calib_n: int | None = None,
    calib_len: int | None = None,
    calib_seed: int = 0,
    float_dtype: torch.dtype = torch.float16,
    progress: bool = True,
) -> QuantizeResult:
    """Quantize `model_spec` with `scheme_name` and save it to out_dir (which must be new or empty)."""
    from trico.io.loader import read_checkpoint, resolve_model_path
    from trico.io.trico_checkpoint import check_output_dir, save_trico_checkpoint
    from trico.models.llama import build_model
    from trico.quant import calibration as calib_mod
    from trico.quant.calibration import load_calibration

    scheme = parse(scheme_name)
    out = check_output_dir(out_dir)
    path = resolve_model_path(model_spec)
    if path.is_dir() and (path / "trico.json").is_file():
        raise TricoError(f"{path} is already a trico checkpoint; quantize the float model it came from")
    ckpt = read_checkpoint(model_spec, progress=progress)
    model = build_model(ckpt.config, ckpt.state_dict, dtype=torch.float32)
    calib = None
    if scheme.method in NEEDS_CALIBRATION:
        if ckpt.tokenizer is None:
            raise TricoError(f"{path}: no tokenizer to tokenize the calibration text with")
        calib = load_calibration(
            ckpt.tokenizer,
            calib_file,
            calib_n or calib_mod.DEFAULT_N_SEQS,
            calib_len or calib_mod.DEFAULT_SEQ_LEN,
            calib_seed,
        )
    t0 = time.perf_counter()
    quantize(model, scheme, calib, progress=progress)
    seconds = time.perf_counter() - t0
    extra = {"gguf_tokenizer": _gguf_tokenizer_info(ckpt.source)} if ckpt.kind == "gguf" else {}
    saved = save_trico_checkpoint(
        model, ckpt.config, ckpt.tokenizer, out, source=str(ckpt.source), float_dtype=float_dtype, extra=extra
    )
    from trico.io.trico_checkpoint import read_manifest

    manifest = read_manifest(saved)
    info = model.trico_quant
    return QuantizeResult(
        saved,
        scheme.name,
        seconds,
        manifest["bytes_on_disk"],
        info.weight_bits(),
        len(info.layers),
        info.high_precision,
    )
