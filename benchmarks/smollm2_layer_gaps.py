"""Why a SmolLM2 scheme's greedy continuation parts between the Triton and torch paths: kernel error or model sensitivity.

For each scheme it prints (1) the worst relative error of the CUDA projection kernels against the
QLinear reference on random x (plain, with the RMSNorm prologue, with the SiLU-gate prologue) and
(2) the relative gap of every decoder layer's output between the two paths for one decode step
after the prompt, with the logit gap. A small (1) with a (2) that grows layer by layer means the
quantized model amplifies the paths' different bf16 roundings; a large (1) would be a kernel bug.
`smollm2_layer_diff.py` looks at the same question per projection on captured real inputs (bf16 ulps);
this script follows the drift through the whole stack and covers the prologue paths.
Usage (CUDA): python benchmarks/smollm2_layer_gaps.py --gguf PATH [--schemes int2-rtn-g64,int4-rtn-g64,ternary-pc]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from trico.engine.fused import fuse_model_  # noqa: E402
from trico.engine.kv_cache import StaticKVCache  # noqa: E402
from trico.errors import TricoError  # noqa: E402
from trico.io.loader import read_checkpoint  # noqa: E402
from trico.kernels import torch_reference  # noqa: E402
from trico.kernels.dispatch import qlinear_forward  # noqa: E402
from trico.kernels.prologue import SILU_GATE, norm_prologue  # noqa: E402
from trico.models.llama import build_model  # noqa: E402
from trico.quant.api import quantize  # noqa: E402

PROMPT = "The history of the city of Rome begins"


def rel(got: torch.Tensor, ref: torch.Tensor) -> float:
    """||got - ref|| / ||ref|| in fp32."""
    return float((got.float() - ref.float()).norm() / ref.float().norm())


@torch.no_grad()
def projection_errors(model) -> list[tuple[float, int, str, str]]:  # noqa: ANN001
    """(relative error, layer, projection, path) of the kernels against the reference, worst first."""
    g = torch.Generator(device="cuda").manual_seed(0)
    out = []
    for i, layer in enumerate(model.model.layers):
        a, m = layer.self_attn, layer.mlp
        for name, mod in (("q", a.q_proj), ("o", a.o_proj), ("gate", m.gate_proj), ("down", m.down_proj)):
            x = torch.randn(1, mod.in_features, device="cuda", generator=g).to(torch.bfloat16)
            out.append((rel(qlinear_forward(mod, x), mod.reference_forward(x)), i, name, "plain"))
            if name == "q":
                h = 3 * x
                want = mod.reference_forward(layer.input_layernorm(h))
                out.append(
                    (
                        rel(qlinear_forward(mod, h, prologue=norm_prologue(layer.input_layernorm)), want),
                        i,
                        name,
                        "norm-prologue",
                    )
                )
            if name == "down":
                gu = torch.randn(1, 2 * mod.in_features, device="cuda", generator=g).to(torch.bfloat16)
                act = (torch.nn.functional.silu(gu[:, : mod.in_features]) * gu[:, mod.in_features :]).to(
                    torch.bfloat16
                )
                out.append(
                    (
                        rel(qlinear_forward(mod, gu, prologue=SILU_GATE), mod.reference_forward(act)),
                        i,
                        name,
                        "silu-prologue",
                    )
                )
    return sorted(out, reverse=True)


@torch.no_grad()
def layer_gaps(model, config, ids: list[int]) -> tuple[list[float], float, float]:  # noqa: ANN001
    """Per-layer relative output gap (Triton vs torch path) for one decode step, the max logit gap and the logits' std."""
    outs: dict[int, list[torch.Tensor]] = {}
    caches = [StaticKVCache(config, 1, len(ids) + 8, dtype=torch.bfloat16, device="cuda") for _ in range(2)]
    prompt, where = torch.tensor([ids], device="cuda"), torch.arange(len(ids), device="cuda")
    with torch_reference():
        model.prefill(prompt, where, caches[0])
    fuse_model_(model)
    model.prefill(prompt, where, caches[1])
    hooks = [
        layer.register_forward_hook(lambda _m, _a, o, i=i: outs.setdefault(i, []).append(o.float()))
        for i, layer in enumerate(model.model.layers)
    ]
    tok, pos = torch.tensor([[ids[-1]]], device="cuda"), torch.tensor([len(ids)], device="cuda")
    with torch_reference():
        ref = model.decode(tok, pos, caches[0]).float()
    fast = model.decode(tok, pos, caches[1]).float()
    for h in hooks:
        h.remove()
    gaps = [rel(outs[i][1], outs[i][0]) for i in range(len(model.model.layers))]
    return gaps, float((fast - ref).abs().max()), float(ref.std())


def main() -> int:
    """Print both measurements for every scheme."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gguf", required=True)
    p.add_argument("--schemes", default="int2-rtn-g64,int4-rtn-g64,ternary-pc")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("smollm2_layer_gaps: needs a CUDA GPU", file=sys.stderr)
        return 2
    ckpt = read_checkpoint(args.gguf)
    ids = ckpt.tokenizer.encode(PROMPT)
    for scheme in args.schemes.split(","):
        model = build_model(ckpt.config, ckpt.state_dict, dtype=torch.bfloat16, device="cuda")
        try:
            quantize(model, scheme, progress=False)
        except TricoError as e:  # e.g. bf16: there are no quantized projections to compare
            print(f"smollm2_layer_gaps: {e}", file=sys.stderr)
            return 2
        worst = projection_errors(model)
        print(scheme, "worst projection rel err:", [(round(e, 5), i, n, k) for e, i, n, k in worst[:4]],
              "median", worst[len(worst) // 2][0])  # fmt: skip
        gaps, logit_gap, logit_std = layer_gaps(model, ckpt.config, ids)
        print(scheme, "layer rel gaps (every 3rd)", [round(x, 4) for x in gaps[::3]],
              "logit gap", round(logit_gap, 3), "logit std", round(logit_std, 3), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
