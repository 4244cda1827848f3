"""Kernel micro-benchmarks on the GPU: achieved GB/s of the packed-weight GEMV/skinny GEMM per format
and launch shape (Llama-2-7B layer shapes), dequantize + cuBLAS for prefill, and flash-decoding.

Usage: python benchmarks/kernels.py [--quick] [--out FILE.json]; prints the best shape per case last.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import triton  # noqa: E402

from trico.kernels import qlinear as qk  # noqa: E402
from trico.kernels.decode_attention import decode_attention, decode_attention_reference  # noqa: E402

FORMATS = [  # (name, fmt, group, symmetric)
    ("bf16", "bf16", 0, True),
    ("int8", "int8", -1, True),
    ("int4-g128", "uint4", 128, True),
    ("int4-g128-asym", "uint4", 128, False),
    ("int3-g128", "uint3", 128, True),
    ("tern2", "tern2", 0, True),
    ("tern1.6", "tern1.6", 0, True),
]
SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008)]
CONFIGS_M1 = [
    (8, 128, 1),
    (8, 256, 1),
    (16, 128, 1),
    (16, 64, 1),
    (32, 64, 1),
    (8, 128, 2),
    (16, 128, 2),
    (16, 128, 4),
]
CONFIGS_MB = [(16, 64, 1), (16, 128, 1), (32, 64, 1), (32, 128, 1), (16, 64, 2), (64, 64, 1)]


def make_weight(fmt: str, group: int, sym: bool, n: int, k: int, device: str = "cuda") -> qk.PackedWeight:
    """Random packed weight of the format (on the GPU unless `device` says otherwise); `_owner` is its QLinear."""
    from trico.quant.qlinear import QLinear

    if fmt == "bf16":
        w = torch.randn(n, k, device=device, dtype=torch.bfloat16)
        return qk.pack_for_kernel(w, None, None, "bf16", k, k)
    g = k if group == -1 else group
    q = QLinear(k, n, fmt, g, sym, device=device)
    if q.qweight.dtype == torch.int8:
        q.qweight.copy_(torch.randint(-127, 128, q.qweight.shape, device=device, dtype=torch.int8))
    else:
        q.qweight.copy_(
            torch.randint(
                0, 243 if fmt == "tern1.6" else 256, q.qweight.shape, device=device, dtype=torch.uint8
            )
        )
    q.scales.copy_(torch.rand(q.scales.shape, device=device) * 0.01 + 0.001)
    if q.mins is not None:
        q.mins.normal_(0, 0.01)
    pw = qk.pack_for_kernel(q.qweight, q.scales, q.mins, fmt, g, k)
    pw.__dict__["_owner"] = q  # keep the buffers alive
    return pw


def nbytes(pw: qk.PackedWeight) -> int:
    """Bytes of packed weight + scales + mins."""
    return sum(t.numel() * t.element_size() for t in (pw.units, pw.scales, pw.mins) if t is not None)


def bench(fn, reps: int = 50) -> float:  # noqa: ANN001
    """Median milliseconds (CUDA events, L2 flushed by do_bench between runs)."""
    return triton.testing.do_bench(fn, warmup=10, rep=reps, return_mode="median")


def main() -> int:
    """Run everything; JSON to --out; best shapes printed last."""
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out", default="")
    p.add_argument("--formats", default="", help="comma-separated subset of the format names")
    p.add_argument("--tuner", action="store_true", help="only the tuner's candidates (qlinear.candidates)")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print("kernels: no CUDA GPU here; nothing to time", file=sys.stderr)
        return 2
    rows, best = [], []
    shapes = SHAPES[:2] if args.quick else SHAPES
    wanted = set(args.formats.split(",")) if args.formats else None
    for name, fmt, group, sym in FORMATS:
        if wanted and name not in wanted:
            continue
        for n, k in shapes:
            pw = make_weight(fmt, group, sym, n, k)
            wb = nbytes(pw)
            ref_w = qk.dequantize(pw, torch.bfloat16)
            for m in (1, 16) if args.quick else (1, 16, 64):
                x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
                ref = x.float() @ ref_w.float().t()
                cublas_ms = bench(lambda: torch.nn.functional.linear(x, ref_w))  # noqa: B023
                deq_ms = bench(lambda: torch.nn.functional.linear(x, qk.dequantize(pw, torch.bfloat16)))  # noqa: B023
                cands = []
                if args.tuner:
                    cfgs = qk.candidates(m)
                else:
                    cfgs = [
                        qk.GemvConfig(bn, kb, sk, num_warps=4, num_stages=st)
                        for bn, kb, sk in (CONFIGS_M1 if m == 1 else CONFIGS_MB)
                        for st in ((2, 4) if not args.quick else (3,))
                    ]
                for cfg in cfgs:
                    if True:
                        try:
                            y = qk.qmm(x, pw, cfg)
                            err = float((y.float() - ref).norm() / ref.norm())
                            ms = bench(lambda: qk.qmm(x, pw, cfg))  # noqa: B023
                        except Exception as exc:  # a shape the compiler refuses is skipped, not fatal
                            print(f"  {name} {n}x{k} m{m} {cfg}: {type(exc).__name__} {str(exc)[:100]}")
                            continue
                        gbps = (wb + x.numel() * 2 + m * n * 2) / ms / 1e6
                        r = dict(
                            fmt=name,
                            n=n,
                            k=k,
                            m=m,
                            cfg=[
                                cfg.block_n,
                                cfg.block_kb,
                                cfg.split_k,
                                cfg.num_warps,
                                cfg.num_stages,
                                int(cfg.dup),
                            ],
                            ms=ms,
                            GBps=gbps,
                            rel_err=err,
                        )
                        rows.append(r)
                        cands.append(r)
                dft = qk.default_config(pw, m)
                dft_ms = bench(lambda: qk.qmm(x, pw, dft))  # noqa: B023
                b = min(cands, key=lambda r: r["ms"])
                print(
                    f"{name} {n}x{k} m{m}: best {b['cfg']} {b['GBps']:.0f} GB/s, default {dft} "
                    f"{dft_ms:.4f} ms, cuBLAS bf16 {cublas_ms:.4f} ms, deq+cuBLAS {deq_ms:.4f} ms",
                    flush=True,
                )
                best.append(
                    dict(
                        fmt=name,
                        n=n,
                        k=k,
                        m=m,
                        best_cfg=b["cfg"],
                        best_ms=b["ms"],
                        best_GBps=b["GBps"],
                        default_ms=dft_ms,
                        default_GBps=(wb + x.numel() * 2 + m * n * 2) / dft_ms / 1e6,
                        cublas_bf16_ms=cublas_ms,
                        dequant_cublas_ms=deq_ms,
                        max_rel_err=max(r["rel_err"] for r in cands),
                    )
                )
            # prefill: dequantize + cuBLAS vs bf16 cuBLAS at M = 2048
            x = torch.randn(2048, k, device="cuda", dtype=torch.bfloat16)
            pre_bf16 = bench(lambda: torch.nn.functional.linear(x, ref_w))  # noqa: B023
            pre_q = bench(lambda: torch.nn.functional.linear(x, qk.dequantize(pw, torch.bfloat16)))  # noqa: B023
            best.append(
                dict(
                    fmt=name,
                    n=n,
                    k=k,
                    m=2048,
                    prefill_bf16_ms=pre_bf16,
                    prefill_dequant_ms=pre_q,
                    prefill_TFLOPs=2 * 2048 * n * k / pre_q / 1e9,
                )
            )
    # flash-decoding attention: Llama-2-7B (MHA 32) and Llama-3-8B (GQA 32/8), head_dim 128
    att = []
    for b, h, hkv, L in [
        (1, 32, 32, 4096),
        (16, 32, 32, 1024),
        (1, 32, 8, 8192),
        (16, 32, 8, 2048),
        (64, 32, 8, 512),
    ]:
        for quant in (False, True):
            q = torch.randn(b, h, 128, device="cuda", dtype=torch.bfloat16)
            if quant:
                kk = torch.randint(-127, 128, (b, hkv, L, 128), device="cuda", dtype=torch.int8)
                vv = torch.randint(-127, 128, (b, hkv, L, 128), device="cuda", dtype=torch.int8)
                ks = torch.rand(b, hkv, L, device="cuda").half() * 0.01
                vs = torch.rand(b, hkv, L, device="cuda").half() * 0.01
            else:
                kk = torch.randn(b, hkv, L, 128, device="cuda", dtype=torch.bfloat16)
                vv = torch.randn(b, hkv, L, 128, device="cuda", dtype=torch.bfloat16)
                ks = vs = None
            pos = torch.tensor([L - 1], device="cuda")
            out = decode_attention(q, kk, vv, pos, ks, vs)
            ref = decode_attention_reference(q, kk, vv, L - 1, ks, vs)
            err = float((out.float() - ref.float()).norm() / ref.float().norm())
            ms = bench(lambda: decode_attention(q, kk, vv, pos, ks, vs))  # noqa: B023
            byt = 2 * kk.numel() * kk.element_size() + (2 * ks.numel() * 2 if quant else 0)
            att.append(dict(b=b, h=h, hkv=hkv, L=L, int8=quant, ms=ms, GBps=byt / ms / 1e6, rel_err=err))
    if args.out:
        Path(args.out).write_text(json.dumps({"configs": rows, "best": best, "attention": att}, indent=1))
    print(
        "\nfmt            N     K      M  best[bn,kb,sk,w,st]     best GB/s  default GB/s  cuBLAS-bf16 ms  deq+cuBLAS ms  err"
    )
    for r in best:
        if r["m"] == 2048:
            print(
                f"{r['fmt']:<14} {r['n']:<5} {r['k']:<6} 2048 prefill: bf16 {r['prefill_bf16_ms']:.3f} ms, dequant+cuBLAS {r['prefill_dequant_ms']:.3f} ms"
            )
            continue
        print(
            f"{r['fmt']:<14} {r['n']:<5} {r['k']:<6} {r['m']:<3} {str(r['best_cfg']):<22} {r['best_GBps']:9.0f} "
            f"{r['default_GBps']:12.0f} {r['cublas_bf16_ms']:14.4f} {r['dequant_cublas_ms']:14.4f} {r['max_rel_err']:.1e}"
        )
    for a in att:
        print(
            f"attn b{a['b']} h{a['h']}/{a['hkv']} L{a['L']} int8={a['int8']}: {a['ms']:.4f} ms {a['GBps']:.0f} GB/s err {a['rel_err']:.1e}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
