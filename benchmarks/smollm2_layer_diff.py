"""Where the Triton path and the torch reference path part on SmolLM2 (GPU): per-layer output mismatch, then logits.

For each scheme the model is quantized once; every projection's input is captured on the reference
path (an 8-token prefill and one decode step), then each projection runs both ways on those inputs:
the fraction of bf16 outputs that differ and the worst difference in bf16 ulps, per row count and
dispatched kernel. Last, the logits of both paths along one fixed continuation: the largest gap per
step and the smallest top-2 margin (a step whose margin is below the gap can flip the greedy token).
Usage: python benchmarks/smollm2_layer_diff.py [--gguf PATH] [--schemes bf16,int8,...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks.smollm2_check import teacher_forced_logits  # noqa: E402
from trico.engine.fused import fuse_model_  # noqa: E402
from trico.engine.kv_cache import StaticKVCache  # noqa: E402
from trico.io.loader import read_checkpoint  # noqa: E402
from trico.kernels import torch_reference  # noqa: E402
from trico.kernels.dispatch import (  # noqa: E402
    dense_forward,
    packed_view,
    qlinear_forward,
    tensor_core_choice,
    word_gemv_choice,
)
from trico.models.llama import build_model  # noqa: E402
from trico.quant.qlinear import QLinear  # noqa: E402

PROMPT = "The history of the city of Rome begins"


def layer_mismatch(model: torch.nn.Module, ids: list[int], config) -> dict[tuple, list]:  # noqa: ANN001
    """(rows, kernel, K) -> [differing outputs, outputs, worst ulps, layers] over captured inputs."""
    caught = []
    mods = [m for m in model.modules() if isinstance(m, (QLinear, torch.nn.Linear))]
    hooks = [
        m.register_forward_pre_hook(lambda m, a: caught.append((m, a[0].detach().clone()))) for m in mods
    ]
    cache = StaticKVCache(config, 1, 128, dtype=torch.bfloat16, device="cuda")
    with torch_reference(), torch.no_grad():
        logits = model.prefill(
            torch.tensor([ids], device="cuda"), torch.arange(len(ids), device="cuda"), cache
        )
        model.decode(logits.argmax(-1).view(1, 1), torch.tensor([len(ids)], device="cuda"), cache)
    for h in hooks:
        h.remove()
    stats: dict[tuple, list] = {}
    with torch.no_grad():
        for m, x in caught:
            x2 = x.reshape(-1, x.shape[-1])
            if isinstance(m, QLinear):
                ref, got, pw = m.reference_forward(x2), qlinear_forward(m, x2), packed_view(m)
                rows = x2.shape[0]
                kind = (
                    "words"
                    if word_gemv_choice(pw, rows)
                    else "tc"
                    if tensor_core_choice(pw, rows)
                    else "other"
                )
            else:
                ref, got, kind = (
                    torch.nn.functional.linear(x2, m.weight),
                    dense_forward(m.weight, x2),
                    "dense",
                )
            ulps = (ref.float() - got.float()).abs() / (ref.float().abs() * 2**-8).clamp_min(1e-30)
            s = stats.setdefault((x2.shape[0], kind, m.in_features), [0, 0, 0.0, 0])
            s[0] += int((ref != got).sum())
            s[1] += ref.numel()
            s[2] = max(s[2], float(ulps.max()))
            s[3] += 1
    return stats


def logit_gaps(model: torch.nn.Module, ids: list[int], config, continuation: list[int]) -> tuple:  # noqa: ANN001
    """Logits [steps, vocab] of the reference path and of the fused path along prompt + continuation."""

    def run() -> torch.Tensor:
        return teacher_forced_logits(
            model, StaticKVCache(config, 1, 128, dtype=torch.bfloat16, device="cuda"), ids, continuation
        )

    with torch.no_grad():
        with torch_reference():
            ref = run()
        fuse_model_(model)
        fast = run()
    return ref, fast


def main() -> int:
    """Print the per-layer table and the logit gaps for every scheme."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", default="smollm2")
    p.add_argument("--schemes", default="bf16,int8,int4-rtn-g32-asym,int4-rtn-g64,ternary-g64-b3")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("smollm2_layer_diff: no CUDA GPU here; nothing to compare", file=sys.stderr)
        return 2
    from trico.quant.api import quantize

    ckpt = read_checkpoint(args.gguf)
    ids = ckpt.tokenizer.encode(PROMPT)
    for scheme in args.schemes.split(","):
        model = build_model(ckpt.config, ckpt.state_dict, dtype=torch.bfloat16, device="cuda")
        if scheme != "bf16":
            quantize(model, scheme, progress=False)
        for (rows, kind, k), (bad, total, worst, n) in sorted(
            layer_mismatch(model, ids, ckpt.config).items()
        ):
            print(
                f"{scheme:18s} rows={rows:<2d} kernel={kind:6s} K={k:<5d} layers={n:3d} "
                f"differ={bad / total:.4f} worst={worst:.1f} ulps"
            )
        ref, fast = logit_gaps(model, ids, ckpt.config, [260, 4469] * 7)
        top2 = ref.topk(2, -1).values
        print(
            f"{scheme:18s} logits: max gap per step {[round(float(g), 2) for g in (ref - fast).abs().amax(-1)]}, "
            f"argmax agreement {float((ref.argmax(-1) == fast.argmax(-1)).float().mean()):.3f}, "
            f"smallest top-2 margin {float((top2[:, 0] - top2[:, 1]).min()):.3f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
