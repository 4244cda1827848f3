"""`trico quantize` (write a quantized trico checkpoint) and `trico export` (GGUF for llama.cpp tools)."""

from __future__ import annotations

import argparse

from trico.errors import TricoError

_FLOAT_DTYPES = ("float16", "bfloat16", "float32")


def _cmd_quantize(args: argparse.Namespace) -> int:
    import torch

    from trico.quant.pipeline import quantize_checkpoint

    r = quantize_checkpoint(
        args.model,
        args.scheme,
        args.out,
        calib_file=args.calib_file,
        calib_n=args.calib_n,
        calib_len=args.calib_len,
        calib_seed=args.calib_seed,
        float_dtype=getattr(torch, args.float_dtype),
        progress=not args.quiet,
    )
    print(
        f"{r.scheme}: {r.n_layers} layers quantized in {r.seconds:.1f} s, {r.weight_bits:.3f} bits/weight "
        f"(scales included); high precision: {', '.join(r.high_precision) or 'none'}; "
        f"{r.bytes_on_disk / 2**20:.1f} MiB on disk -> {r.out}"
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from trico.io.gguf_writer import export_gguf

    if args.format != "gguf":
        raise TricoError(f"unknown export format {args.format!r}; known: gguf")
    r = export_gguf(args.model, args.out, progress=not args.quiet)
    counts = ", ".join(f"{n} {t}" for t, n in sorted(r.type_counts.items()))
    print(f"wrote {r.out} ({r.bytes_on_disk / 2**20:.1f} MiB): tensors {counts}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `quantize` and `export` sub-commands."""
    from trico.quant.schemes import list_schemes

    p = subparsers.add_parser(
        "quantize",
        help="quantize a model and write a trico checkpoint",
        description="Quantize a model (nn.Linear -> packed QLinear) and write safetensors + trico.json.",
    )
    p.add_argument(
        "--model", default="smollm2", help="float model: 'smollm2', a GGUF file or an HF directory"
    )
    p.add_argument("--scheme", required=True, help=f"scheme name, e.g. {', '.join(list_schemes()[:6])}, ...")
    p.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    p.add_argument(
        "--calib-file", default=None, help="calibration text (default: shared wikitext2-valid.txt)"
    )
    # 32 = trico.quant.calibration.DEFAULT_N_SEQS (not imported: the CLI starts without torch)
    p.add_argument("--calib-n", type=int, default=32, help="number of calibration sequences (default 32)")
    p.add_argument("--calib-len", type=int, default=512, help="tokens per calibration sequence")
    p.add_argument("--calib-seed", type=int, default=0, help="seed for picking calibration windows")
    p.add_argument(
        "--float-dtype", choices=_FLOAT_DTYPES, default="float16", help="dtype of unquantized tensors"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_quantize)

    e = subparsers.add_parser(
        "export",
        help="export a trico checkpoint to GGUF",
        description="Export a trico checkpoint to GGUF (Q8_0 / Q4_0 / Q4_1 / TQ1_0 / TQ2_0 where the layout matches).",
    )
    e.add_argument("--model", required=True, help="trico checkpoint directory (or any model trico reads)")
    e.add_argument("--format", default="gguf", help="output format (gguf)")
    e.add_argument("--out", required=True, help="output .gguf file (must not exist)")
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=_cmd_export)
