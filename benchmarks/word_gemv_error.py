"""How far the one-row word GEMV's fp32 sums sit from the exact product, next to the QLinear reference's, on SmolLM2.

Runs on the CPU under the Triton interpreter (TRITON_INTERPRET=1 is set here), so it needs no GPU:
the model is quantized, one decode step on the reference path captures every projection's real
input, and each projection with a word-GEMV launch shape runs the kernel on that input in fp32
(so no bf16 rounding hides the sum). Errors are in units of fp32 epsilon times sum |x| |w| (the
scale a summation error is bounded by); `kernel/ref` above 1 means the kernel sums less accurately.
Usage: python benchmarks/word_gemv_error.py [--schemes int8,int4-rtn-g64] [--layers 2]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from trico.engine.kv_cache import StaticKVCache  # noqa: E402
from trico.errors import TricoError  # noqa: E402
from trico.io.loader import read_checkpoint  # noqa: E402
from trico.kernels.dispatch import packed_view, word_gemv_choice  # noqa: E402
from trico.kernels.gemv import gemv_words  # noqa: E402
from trico.kernels.qlinear import dequantize  # noqa: E402
from trico.models.llama import build_model  # noqa: E402
from trico.quant.api import quantize  # noqa: E402
from trico.quant.qlinear import QLinear  # noqa: E402
from trico.quant.schemes import parse as parse_scheme  # noqa: E402

PROMPT = "The history of the city of Rome begins"


def decode_inputs(model: torch.nn.Module, ids: list[int], config) -> list[tuple[QLinear, torch.Tensor]]:  # noqa: ANN001
    """(projection, its input) for every QLinear call of one decode step after the prompt."""
    cache = StaticKVCache(config, 1, len(ids) + 8, dtype=torch.bfloat16, device="cpu")
    caught: list[tuple[QLinear, torch.Tensor]] = []
    with torch.no_grad():
        logits = model.prefill(torch.tensor([ids]), torch.arange(len(ids)), cache)
        hooks = [
            m.register_forward_pre_hook(lambda m, a: caught.append((m, a[0].detach().reshape(1, -1))))
            for m in model.modules()
            if isinstance(m, QLinear)
        ]
        model.decode(logits.argmax(-1).view(1, 1), torch.tensor([len(ids)]), cache)
    for h in hooks:
        h.remove()
    return caught


def sum_errors(m: QLinear, x: torch.Tensor) -> tuple[float, float] | None:
    """Worst error of the word GEMV and of the reference, in eps * sum |x||w|; None without a word GEMV."""
    pw = packed_view(m)
    cfg = word_gemv_choice(pw, 1)
    if cfg is None:
        return None
    x = x.float().contiguous()
    w = dequantize(pw, torch.float64)
    exact = x.double() @ w.t()
    unit = (x.double().abs() @ w.abs().t()) * torch.finfo(torch.float32).eps
    kernel = (gemv_words(x, pw, cfg).double() - exact).abs() / unit
    ref = (m.reference_forward(x).double() - exact).abs() / unit
    return float(kernel.max()), float(ref.max())


def main() -> int:
    """Print one line per scheme: worst and median-of-worst errors of kernel and reference."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", default="smollm2")
    p.add_argument("--schemes", default="int8,int4-rtn-g64")
    p.add_argument("--layers", type=int, default=2, help="decoder layers to check (the interpreter is slow)")
    args = p.parse_args()
    schemes = [v for v in args.schemes.split(",") if v]
    try:
        for scheme in schemes:
            parse_scheme(scheme)
    except TricoError as exc:
        p.error(str(exc))
    ckpt = read_checkpoint(args.gguf)
    ids = ckpt.tokenizer.encode(PROMPT)
    for scheme in schemes:
        model = build_model(ckpt.config, ckpt.state_dict, dtype=torch.bfloat16, device="cpu")
        quantize(model, scheme, progress=False)
        pairs = decode_inputs(model, ids, ckpt.config)
        per_layer = len(pairs) // ckpt.config.n_layers
        rows = [e for m, x in pairs[: args.layers * per_layer] if (e := sum_errors(m, x)) is not None]
        if not rows:
            print(f"{scheme:16s} no projection runs the word GEMV")
            continue
        kernel, ref = sorted(r[0] for r in rows), sorted(r[1] for r in rows)
        print(
            f"{scheme:16s} {len(rows)} projections: worst error kernel {kernel[-1]:.2f} ref {ref[-1]:.2f}, "
            f"median of per-projection worst kernel {kernel[len(rows) // 2]:.2f} ref {ref[len(rows) // 2]:.2f} "
            "(units: fp32 eps x sum|x||w|)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
