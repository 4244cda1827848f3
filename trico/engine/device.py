"""Choosing where to run: CUDA when present, otherwise the CPU torch path with a notice."""

from __future__ import annotations

import sys

import torch

from trico.errors import TricoError

_DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
    "fp16": torch.float16,
    "float16": torch.float16,
}


def resolve_device(spec: str = "auto", quiet: bool = False) -> torch.device:
    """'auto' -> cuda if available else cpu (with a notice); 'cuda' without a GPU is an error."""
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if not quiet:
            print("trico: no GPU found; running the torch reference path on the CPU", file=sys.stderr)
        return torch.device("cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise TricoError("--device cuda requested but no CUDA GPU is available")
    try:
        return torch.device(spec)
    except RuntimeError:
        raise TricoError(f"unknown device {spec!r} (use auto, cpu or cuda)") from None


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """'auto' -> bf16 on CUDA, fp32 on CPU; otherwise fp32 / bf16 / fp16."""
    if spec == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if spec not in _DTYPES:
        raise TricoError(f"unknown dtype {spec!r} (use auto, fp32, bf16 or fp16)")
    return _DTYPES[spec]
