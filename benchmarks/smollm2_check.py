"""On the GPU, SmolLM2-135M's greedy continuation must be the same on the Triton path and the torch path.

For each scheme the model is quantized once; the torch reference path (no fused layers, QLinear
reference forward, SDPA attention, eager decode) and the Triton path (fused layers, packed-weight
kernels, flash-decoding, CUDA-graph decode) each generate 64 greedy tokens from the same prompt.
Where they part, the teacher-forced logits of both paths (fed the reference continuation) say
whether a step was a near tie: the reference's top-1 margin against how far the two paths' logits
are apart at that step.
Usage: python benchmarks/smollm2_check.py [--gguf PATH] [--schemes bf16,int8,...] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from trico.engine.cuda_graphs import enable_fast_decode  # noqa: E402
from trico.engine.generator import Generator  # noqa: E402
from trico.engine.kv_cache import StaticKVCache  # noqa: E402
from trico.engine.sampler import Sampler  # noqa: E402
from trico.io.loader import read_checkpoint  # noqa: E402
from trico.kernels import torch_reference  # noqa: E402
from trico.models.llama import build_model  # noqa: E402

PROMPT = "The history of the city of Rome begins"
SCHEMES = (
    "bf16,int8,int4-rtn-g32-asym,int4-rtn-g64,int3-rtn-g64,int2-rtn-g64,ternary-pc,ternary-g64-b3,kv-int8"
)


def new_cache(config, length: int, kv8: bool, device: str):  # noqa: ANN001, ANN201 - a static KV cache
    """A one-sequence bf16 static cache of `length` positions (int8 with kv8)."""
    cache_cls = StaticKVCache
    if kv8:
        from trico.engine.kv_cache_int8 import Int8KVCache

        cache_cls = Int8KVCache
    return cache_cls(config, 1, length, dtype=torch.bfloat16, device=device)


def greedy(model, config, prompt_ids: list[int], n: int, fast: bool, kv8: bool, device: str) -> list[int]:  # noqa: ANN001
    """n greedy tokens after the prompt, on the Triton path (fast) or the torch reference path."""
    cache = new_cache(config, len(prompt_ids) + n + 4, kv8, device)
    gen = Generator(model, cache, Sampler(device=device))
    if fast:
        enable_fast_decode(gen, "graph")
    return list(gen.generate(prompt_ids, n))


def forced(model, config, prompt_ids: list[int], ref: list[int], kv8: bool, device: str) -> list[int]:  # noqa: ANN001
    """Fast-path argmax at every step when fed the reference continuation (teacher forcing)."""
    cache = new_cache(config, len(prompt_ids) + len(ref) + 4, kv8, device)
    gen = Generator(model, cache, Sampler(device=device))
    enable_fast_decode(gen, "graph")
    preds = [int(gen.prefill(torch.tensor([prompt_ids]))[0])]
    for tok in ref[:-1]:
        gen.token_buf.fill_(tok)
        preds.append(int(gen.decode()[0]))
    return preds


@torch.no_grad()
def teacher_forced_logits(model, cache, prompt_ids: list[int], continuation: list[int]) -> torch.Tensor:  # noqa: ANN001
    """fp32 logits [1 + len(continuation), vocab]: the prompt's, then one per fed token, eager, on the current path."""
    device = cache.k.device
    out = [
        model.prefill(
            torch.tensor([prompt_ids], device=device), torch.arange(len(prompt_ids), device=device), cache
        )
    ]
    for i, tok in enumerate(continuation):
        pos = torch.tensor([len(prompt_ids) + i], device=device)
        out.append(model.decode(torch.tensor([[tok]], device=device), pos, cache))
    return torch.cat([o.float().reshape(1, -1) for o in out])


def tie_report(ref_logits: torch.Tensor, fast_logits: torch.Tensor) -> dict:
    """How far the paths' teacher-forced logits are apart, and at each step where their argmax differs,
    the reference's top-1 margin (a flip with a margin below the logit gap is a near tie)."""
    gap = (fast_logits - ref_logits).abs().amax(-1)
    top2 = ref_logits.topk(2, dim=-1).values
    margin = top2[:, 0] - top2[:, 1]
    flips = (fast_logits.argmax(-1) != ref_logits.argmax(-1)).nonzero().flatten().tolist()
    return {
        "forced_max_logit_gap": float(gap.max()),
        "forced_median_logit_gap": float(gap.median()),
        "forced_median_top1_margin": float(margin.median()),
        "forced_flips": [
            {"step": i, "ref_margin": float(margin[i]), "logit_gap": float(gap[i])} for i in flips
        ],
    }


def main() -> int:
    """Run every scheme, print a line each, write the JSON; exit 1 if any continuation differs."""
    p = argparse.ArgumentParser()
    p.add_argument("--gguf", default="smollm2")
    p.add_argument("--schemes", default=SCHEMES)
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--out", default="")
    p.add_argument("--device", default="cuda")
    args = p.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            "smollm2_check: no CUDA GPU here; the check compares the Triton path on the GPU with the torch path",
            file=sys.stderr,
        )
        return 2
    from trico.quant.api import quantize

    ckpt = read_checkpoint(args.gguf)
    ids = ckpt.tokenizer.encode(PROMPT) if ckpt.tokenizer is not None else [1, 504, 2254, 282, 260, 3434]
    results, ok = [], True
    for scheme in args.schemes.split(","):
        model = build_model(ckpt.config, ckpt.state_dict, dtype=torch.bfloat16, device=args.device)
        kv8 = scheme == "kv-int8"
        if scheme not in ("bf16", "kv-int8"):
            quantize(model, scheme, progress=False)
        with torch_reference():
            ref = greedy(model, ckpt.config, ids, args.tokens, fast=False, kv8=kv8, device=args.device)
        fast = greedy(model, ckpt.config, ids, args.tokens, fast=True, kv8=kv8, device=args.device)
        same = ref == fast
        first = next((i for i, (a, b) in enumerate(zip(ref, fast)) if a != b), None)
        tf = forced(model, ckpt.config, ids, ref, kv8, args.device)
        agree = sum(a == b for a, b in zip(tf, ref)) / len(ref)
        length = len(ids) + len(ref) + 4
        fast_logits = teacher_forced_logits(
            model, new_cache(ckpt.config, length, kv8, args.device), ids, ref[:-1]
        )
        with torch_reference():
            ref_cache = new_cache(ckpt.config, length, kv8, args.device)
            ties = tie_report(teacher_forced_logits(model, ref_cache, ids, ref[:-1]), fast_logits)
        ok &= same
        text = ckpt.tokenizer.decode(fast) if ckpt.tokenizer is not None else ""
        results.append(
            {
                "scheme": scheme,
                "identical": same,
                "first_diff": first,
                "teacher_forced_top1_agreement": agree,
                **ties,
                "ref": ref,
                "triton": fast,
                "text": text,
            }
        )
        print(
            f"{scheme:<22} identical={same} first_diff={first} forced-agree={agree:.3f} "
            f"logit-gap max {ties['forced_max_logit_gap']:.3f} median {ties['forced_median_logit_gap']:.3f} "
            f"flips (margin, gap) {[(round(f['ref_margin'], 3), round(f['logit_gap'], 3)) for f in ties['forced_flips']]} "
            f"| {text[:40]!r}",
            flush=True,
        )
        if args.out:  # written as it goes
            Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
