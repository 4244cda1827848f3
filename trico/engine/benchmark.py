"""Decode / prefill speed benchmark per ../shared/BENCH.md (used by benchmarks/decode.py and `trico bench`).

Every call measures, in the same process: the copy-bandwidth ceiling (2 GiB bf16 device copy,
bytes read + written, median of 20) and the bf16 matmul peak (8192^3, median), the HF
transformers static-cache compiled baseline, and trico itself (fused layers, packed-weight
kernels, flash-decoding, decode step in a CUDA graph). Weights are random and made on the device:
decode speed does not depend on their values.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from trico.config import ModelConfig, get_config, tiny_config
from trico.engine.generator import Generator
from trico.engine.kv_cache import StaticKVCache
from trico.engine.sampler import Sampler
from trico.errors import TricoError
from trico.kernels import int8_activations, prologues_allowed
from trico.kernels.pdl import pdl_on
from trico.models.llama import Transformer


@dataclasses.dataclass(frozen=True)
class WeightScheme:
    """A benchmark weight format: QLinear format, group size (0 per tensor, -1 per channel), symmetry."""

    name: str
    fmt: str | None
    """QLinear format, or None for plain bf16 nn.Linear."""
    group_size: int = -1
    symmetric: bool = True
    int8_activations: bool = False
    """Decode GEMVs quantize x to int8 (`-a8` suffix; see trico.kernels.gemv_a8)."""


def parse_scheme(name: str) -> WeightScheme:
    """'bf16', 'int8', 'int4-g128', 'int3-g128-asym', 'int2-g64', 'uint8-g128', 'tern2', 'tern1.6', 'w8a8';
    a quantized format with '-a8' runs its one-row decode GEMVs with int8 activations."""
    parts = name.split("-")
    sym = "asym" not in parts
    a8 = "a8" in parts
    parts = [p for p in parts if p not in ("asym", "sym", "a8")]
    if a8 and parts[0] == "bf16":
        raise TricoError("'-a8' applies to quantized weight formats, not bf16")
    return dataclasses.replace(_parse_weights(name, parts, sym), int8_activations=a8)


def _parse_weights(name: str, parts: list[str], sym: bool) -> WeightScheme:
    """The weight part of a benchmark format name."""
    group = -1
    for p in parts[1:]:
        if p.startswith("g") and p[1:].isdigit():
            group = int(p[1:])
    base = parts[0]
    if base == "bf16":
        return WeightScheme(name, None)
    if base == "int8":
        return WeightScheme(name, "int8", group, True)
    if base in ("int2", "int3", "int4", "uint8"):
        return WeightScheme(name, "uint" + base[-1], group, sym)
    if base in ("tern2", "tern1.6"):
        return WeightScheme(name, base, 0 if group == -1 else group, True)
    if base == "w8a8":  # int8 weights and int8 per-token activations (SmoothQuant, no smoothing)
        return WeightScheme(name, "w8a8", -1, True)
    raise TricoError(
        f"unknown benchmark format {name!r} (bf16, int8, int4-g128, int3-g128, tern2, tern1.6, w8a8, ...)"
    )


def model_config(name: str) -> ModelConfig:
    """A preset, or 'tiny' for CPU smoke runs."""
    return tiny_config(max_seq_len=4096) if name == "tiny" else get_config(name)


@torch.no_grad()
def build_random_model(
    config: ModelConfig, device: torch.device, dtype: torch.dtype = torch.bfloat16
) -> Transformer:
    """A model with random weights drawn directly on the device (fast even for 7B+)."""
    with torch.device("meta"):
        model = Transformer(config)
    model = model.to_empty(device=device)
    gen = torch.Generator(device=device).manual_seed(0)
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            p.normal_(1.0, 0.1, generator=gen)
        else:
            p.normal_(0.0, 0.02, generator=gen)
    model.rotary._apply(lambda t: t)  # rebuild the cos/sin tables that to_empty left uninitialised
    return model.to(dtype).eval()


@torch.no_grad()
def _empty_qlinear(in_features: int, scheme: WeightScheme) -> nn.Module:
    """A one-row QLinear without storage: raises TricoError where the scheme cannot pack this width."""
    from trico.quant.qlinear import QLinear

    group = in_features if scheme.group_size == -1 else scheme.group_size
    return QLinear(in_features, 1, scheme.fmt, group, scheme.symmetric, device="meta")


def random_qlinear(linear: nn.Linear, scheme: WeightScheme, gen: torch.Generator) -> nn.Module:
    """A QLinear of linear's shape with random packed codes and plausible scales, made on its device."""
    from trico.quant.qlinear import QLinear

    dev = linear.weight.device
    k, n = linear.in_features, linear.out_features
    group = k if scheme.group_size == -1 else scheme.group_size
    q = QLinear(k, n, scheme.fmt, group, scheme.symmetric, device=dev)
    if q.qweight.dtype == torch.int8:
        q.qweight.copy_(
            torch.randint(-127, 128, q.qweight.shape, device=dev, generator=gen, dtype=torch.int8)
        )
    else:
        hi = 243 if scheme.fmt == "tern1.6" else 256
        q.qweight.copy_(torch.randint(0, hi, q.qweight.shape, device=dev, generator=gen, dtype=torch.uint8))
    q.scales.copy_(torch.rand(q.scales.shape, device=dev, generator=gen) * 0.01 + 0.001)
    if q.mins is not None:
        q.mins.copy_(torch.randn(q.mins.shape, device=dev, generator=gen) * 0.01)
    return q


def swap_linears(model: Transformer, scheme: WeightScheme) -> dict[str, nn.Module]:
    """Replace every decoder-layer linear (not lm_head) with a random QLinear; returns the originals."""
    originals: dict[str, nn.Module] = {}
    if scheme.fmt is None:
        return originals
    gen = torch.Generator(device=model.lm_head.weight.device).manual_seed(1)
    for name, mod in list(model.model.layers.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.Linear):
                setattr(mod, cname, random_qlinear(child, scheme, gen))
                # Parked on the host so the GPU holds (and peak memory reports) only this format.
                originals[f"{name}.{cname}"] = child.to("cpu")
    _free_device_caches(model)
    return originals


def _free_device_caches(model: Transformer | None = None) -> None:
    """Drop cached fused projections and kernel views of weights (they keep old weights alive)."""
    import gc

    from trico.engine.fused import FusedDecoderLayer
    from trico.kernels import dispatch

    dispatch.clear_caches()
    for layer in model.model.layers if model is not None else ():
        if isinstance(layer, FusedDecoderLayer):
            layer.drop_fused()
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def restore_linears(model: Transformer, originals: dict[str, nn.Module]) -> None:
    """Undo swap_linears."""
    device = model.lm_head.weight.device
    for full, child in originals.items():
        parent, cname = full.rsplit(".", 1)
        setattr(model.model.layers.get_submodule(parent), cname, child.to(device))
    _free_device_caches(model)


def weight_bytes(model: Transformer) -> int:
    """Bytes of every parameter and buffer a decode step reads, except the embedding table and RoPE tables."""
    skip = {id(model.model.embed_tokens.weight), id(model.rotary.cos), id(model.rotary.sin)}
    if model.config.tie_embeddings:
        skip.discard(id(model.model.embed_tokens.weight))  # the tied table is read whole as lm_head
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) in skip or id(t) in seen:
            continue
        seen.add(id(t))
        total += t.numel() * t.element_size()
    return total


def kv_bytes_per_step(config: ModelConfig, batch: int, context: int, elem: int = 2) -> int:
    """Keys and values read by one decode step at a context of `context` tokens."""
    return 2 * config.n_layers * batch * config.n_kv_heads * config.head_dim * context * elem


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> list[float]:
    """Seconds of each of `repeats` calls, synchronized around each."""
    out = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return out


def copy_bandwidth(device: torch.device) -> float | None:
    """Device-to-device copy of a 2 GiB bf16 buffer, GB/s counting read + write, median of 20."""
    if device.type != "cuda":
        return None
    n = (2 << 30) // 2
    a = torch.empty(n, dtype=torch.bfloat16, device=device).normal_()
    b = torch.empty_like(a)
    b.copy_(a)
    ts = []
    for _ in range(20):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        b.copy_(a)
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e) / 1e3)
    del a, b
    torch.cuda.empty_cache()
    return 2 * n * 2 / statistics.median(ts) / 1e9


def matmul_peak(device: torch.device, size: int = 8192) -> float | None:
    """bf16 matmul of random size^3 operands, TFLOP/s, median of 10 after warm-up."""
    if device.type != "cuda":
        return None
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    ts = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        a @ b
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e) / 1e3)
    return 2 * size**3 / statistics.median(ts) / 1e12


def source_fingerprint(root: Path | None = None) -> str:
    """A short hash of every .py file under trico/ (paths and contents): names the code that ran even where
    the copy of the tree carries no (or a stale) git history, as on the benchmark GPU machine."""
    import hashlib

    root = root or Path(__file__).resolve().parents[1]
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def environment(device: torch.device) -> dict:
    """gpu / torch / triton / git_sha / source fingerprint / date fields of every result."""
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    sha = os.environ.get("TRICO_GIT_SHA", "")  # the device copy of the tree has no git history
    if not sha:
        try:
            sha = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
            ).stdout.strip()
        except OSError:
            sha = ""
    return {
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "triton": triton_version,
        "git_sha": sha or None,
        "source_sha1": source_fingerprint(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "programmatic_launch": device.type == "cuda" and pdl_on(torch.empty(0, device=device)),
        "fused_prologues": prologues_allowed(),
    }


def _alloc_count(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    return int(torch.cuda.memory_stats(device).get("allocation.all.allocated", 0))


WARM_STEPS = 3
"""Decode steps `bench_decode` runs before timing (graph capture or compilation happens there)."""


@torch.no_grad()
def bench_decode(
    model: Transformer,
    batch: int,
    prompt: int,
    new_tokens: int,
    context: int,
    mode: str,
    repeats: int,
    device: torch.device,
) -> dict:
    """Decode `new_tokens` steps after a prompt ending at `context`; tokens/s, ms per step, memory."""
    from trico.engine.cuda_graphs import enable_fast_decode

    config = model.config
    warm = WARM_STEPS
    max_len = context + new_tokens + warm
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    dtype = model.lm_head.weight.dtype
    cache = StaticKVCache(config, batch, max_len, dtype=dtype, device=device)
    gen = Generator(model, cache, Sampler(device=device))
    enable_fast_decode(gen, mode)
    tokens = torch.randint(0, config.vocab_size, (batch, prompt), device=device)
    # Positions before the prompt (context > prompt) keep zeros: speed does not depend on their values.
    start = context - prompt
    t0 = time.perf_counter()
    gen.prefill(tokens, start=start)
    for _ in range(warm):  # graph capture / compilation happens here
        gen.decode()
    _sync(device)
    warm_s = time.perf_counter() - t0

    def run() -> None:
        gen.pos = context
        for _ in range(new_tokens):
            gen.decode()

    allocs0 = _alloc_count(device)
    secs = statistics.median(timed(run, device, repeats))
    allocs = _alloc_count(device) - allocs0
    wbytes = weight_bytes(model) + batch * config.dim * model.model.embed_tokens.weight.element_size()
    avg_ctx = context + (new_tokens + 1) / 2
    step_bytes = wbytes + kv_bytes_per_step(config, batch, round(avg_ctx), cache.k.element_size())
    steps_s = new_tokens / secs
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "bench": "decode",
        "batch": batch,
        "prompt": prompt,
        "context": context,
        "new_tokens": new_tokens,
        "tok_s": batch * steps_s,
        "ms_per_token": 1e3 / steps_s,
        "bytes_per_step": step_bytes,
        "achieved_GBps": step_bytes * steps_s / 1e9,
        "decode_mode": mode if device.type == "cuda" else "eager (cpu)",
        "warmup_s": warm_s,
        "allocs_in_decode_loop": allocs,
        "peak_mem_GiB": peak,
    }


def model_flops(config: ModelConfig, tokens: int) -> float:
    """Forward FLOPs of a causal prefill of `tokens` tokens (matmuls + attention; last-token lm_head)."""
    linear = config.n_layers * (
        config.dim * (config.q_dim + 2 * config.kv_dim)
        + config.q_dim * config.dim
        + 3 * config.dim * config.hidden_dim
    )
    attn = config.n_layers * 2 * 2 * config.q_dim * tokens * (tokens + 1) / 2
    return 2 * linear * tokens + attn + 2 * config.dim * config.vocab_size


@torch.no_grad()
def bench_prefill(
    model: Transformer, tokens: int, repeats: int, device: torch.device, mode: str = "graph"
) -> dict:
    """Time to first token for a batch-1 prompt of `tokens` tokens through the engine's Generator, and model
    FLOP/s; `eager_ttft_ms` is the same prompt with every launch made from Python (no prefill graph)."""
    from trico.engine.cuda_graphs import enable_fast_decode, prefill_graphs
    from trico.engine.fused import fuse_model_

    fuse_model_(model)  # in every decode mode, so prefill numbers compare across modes
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    cache = StaticKVCache(model.config, 1, tokens, dtype=model.lm_head.weight.dtype, device=device)
    gen = Generator(model, cache, Sampler(device=device))
    enable_fast_decode(gen, mode)
    x = torch.randint(0, model.config.vocab_size, (1, tokens), device=device)
    with prefill_graphs(False):
        gen.prefill(x)
        eager = statistics.median(timed(lambda: gen.prefill(x), device, repeats))
    gen.prefill(x)  # a repeated shape: captured here in graph mode (BENCH.md: warm up before timing)
    secs = statistics.median(timed(lambda: gen.prefill(x), device, repeats))
    flops = model_flops(model.config, tokens)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {
        "bench": "prefill",
        "batch": 1,
        "prompt": tokens,
        "context": tokens,
        "new_tokens": 0,
        "ttft_ms": secs * 1e3,
        "eager_ttft_ms": eager * 1e3,
        "prefill_mode": mode if device.type == "cuda" else "eager (cpu)",
        "tok_s": tokens / secs,
        "TFLOPs": flops / secs / 1e12,
        "peak_mem_GiB": peak,
    }


@torch.no_grad()
def hf_baseline(model: Transformer, batch: int, prompt: int, new_tokens: int, device: torch.device) -> dict:
    """HF transformers LlamaForCausalLM on the same weights, static cache, compiled forward: decode tok/s."""
    import transformers

    c = model.config
    hf_cfg = transformers.LlamaConfig(
        vocab_size=c.vocab_size,
        hidden_size=c.dim,
        intermediate_size=c.hidden_dim,
        num_hidden_layers=c.n_layers,
        num_attention_heads=c.n_heads,
        num_key_value_heads=c.n_kv_heads,
        head_dim=c.head_dim,
        max_position_embeddings=c.max_seq_len,
        rope_theta=c.rope_theta,
        rms_norm_eps=c.norm_eps,
        tie_word_embeddings=c.tie_embeddings,
    )
    # Random weights drawn on the GPU in bf16 (speed does not depend on their values).
    prev = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            hf = transformers.LlamaForCausalLM(hf_cfg)
    finally:
        torch.set_default_dtype(prev)
    hf.eval()
    # transformers >= 4.50 compiles the decode forward itself when the cache is static (its
    # CompileConfig: fullgraph, reduce-overhead); wrapping forward in torch.compile by hand on top
    # of that breaks its CUDA-graph replays (seen with transformers 5.17).
    hf.generation_config.cache_implementation = "static"
    hf.generation_config.pad_token_id = 0
    if hasattr(transformers, "CompileConfig"):
        hf.generation_config.compile_config = transformers.CompileConfig(
            fullgraph=True, mode="reduce-overhead"
        )
    ids = torch.randint(1, c.vocab_size, (batch, prompt), device=device)
    mask = torch.ones_like(ids)

    def gen(n: int) -> None:
        hf.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False)

    t0 = time.perf_counter()
    for _ in range(2):
        gen(new_tokens)
    warm = time.perf_counter() - t0
    full = statistics.median(timed(lambda: gen(new_tokens), device, 3))
    first = statistics.median(timed(lambda: gen(1), device, 3))
    hf = None
    torch._dynamo.reset()  # compiled graphs hold the HF weights; release them before trico's runs
    _free_device_caches()
    return {
        "name": f"transformers {transformers.__version__} static cache, generate's compiled decode (reduce-overhead)",
        "tok_s": batch * (new_tokens - 1) / (full - first),
        "end_to_end_s": full,
        "warmup_s": warm,
    }


def _decode_fits(ctx: int, new_tokens: int, config: ModelConfig) -> bool:
    """Whether a decode run at this context, warm-up steps included, fits the model's positions."""
    return ctx + new_tokens + WARM_STEPS <= config.max_seq_len


def check_grid(
    models: list[str],
    formats: list[str],
    batches: list[int],
    prompt: int,
    new_tokens: int,
    contexts: list[int] | None,
    prefill: int,
    repeats: int = 3,
) -> None:
    """Raise TricoError (one line) for a grid `run` could not measure as asked."""
    if not models or not formats or not batches:
        raise TricoError("the grid needs at least one model, one format and one batch size")
    for name in formats:
        parse_scheme(name)
    if min(batches) < 1 or min(contexts or [1]) < 1 or prompt < 1 or new_tokens < 1 or repeats < 1:
        raise TricoError("batch sizes, contexts, --prompt, --new-tokens and --repeats must be >= 1")
    if prefill < 0:
        raise TricoError("--prefill must be >= 0 (0 skips it)")
    for name in models:
        config = model_config(name)
        for scheme in map(parse_scheme, formats):
            try:
                for k in {config.dim, config.q_dim, config.hidden_dim} if scheme.fmt else ():
                    _empty_qlinear(k, scheme)  # QLinear's own checks: group sizes, packing multiples
            except TricoError as exc:
                raise TricoError(f"{name} cannot take {scheme.name}: {exc}") from None
        limit = config.max_seq_len
        # One grid may serve models of several lengths (run() skips a context too long for one of
        # them), but each model must have a context to measure.
        shortest = min(contexts or [prompt])
        if not _decode_fits(shortest, new_tokens, config):
            raise TricoError(
                f"{name} holds {limit} positions: context {shortest} + {new_tokens} new tokens does not fit"
            )
        if prefill > limit:
            raise TricoError(f"{name} holds {limit} positions: --prefill {prefill} does not fit")


def run(
    models: list[str],
    formats: list[str],
    batches: list[int],
    prompt: int,
    new_tokens: int,
    contexts: list[int] | None,
    prefill: int,
    baseline: bool,
    device: torch.device,
    mode: str = "graph",
    compare_compile: bool = False,
    repeats: int = 3,
    baseline_batches: list[int] | None = None,
    log: Callable[[str], None] = print,
    out: str | Path | None = None,
) -> list[dict]:
    """Every configuration of the grid; one result dict each (BENCH.md fields + context, ttft_ms...)."""
    # A misspelt format or an impossible grid fails before minutes of ceilings and model building.
    check_grid(models, formats, batches, prompt, new_tokens, contexts, prefill, repeats)
    env = environment(device)
    copy_gbps = copy_bandwidth(device)
    mm_tflops = matmul_peak(device)
    log(f"ceilings: copy {copy_gbps} GB/s, bf16 matmul {mm_tflops} TFLOP/s on {env['gpu']}")
    contexts = contexts or [prompt]
    results: list[dict] = []
    for model_name in models:
        config = model_config(model_name)
        model = build_random_model(config, device)
        baselines: dict[int, dict] = {}
        if baseline and device.type == "cuda":
            for b in baseline_batches or [1]:
                try:
                    baselines[b] = hf_baseline(model, b, prompt, new_tokens, device)
                    log(f"{model_name} HF baseline batch {b}: {baselines[b]['tok_s']:.1f} tok/s")
                except Exception as exc:  # the baseline must not sink the whole run
                    log(f"{model_name} HF baseline batch {b} failed: {type(exc).__name__}: {exc}")
                    baselines[b] = {"name": "transformers (failed)", "tok_s": None, "error": str(exc)[:300]}
        for fmt_name in formats:
            scheme = parse_scheme(fmt_name)
            originals = swap_linears(model, scheme)
            modes = [mode] + (["compile"] if compare_compile and scheme.fmt is None else [])
            for ctx in contexts:
                for b in batches:
                    if not _decode_fits(ctx, new_tokens, config):
                        log(f"skip {model_name} ctx {ctx}: beyond max_seq_len {config.max_seq_len}")
                        continue
                    for m in modes:
                        if m == "compile" and (b != batches[0] or ctx != contexts[0]):
                            continue
                        try:
                            with int8_activations(scheme.int8_activations):
                                r = bench_decode(
                                    model, b, min(prompt, ctx), new_tokens, ctx, m, repeats, device
                                )
                        except torch.cuda.OutOfMemoryError:
                            log(f"skip {model_name} {fmt_name} batch {b} ctx {ctx}: out of memory")
                            torch.cuda.empty_cache()
                            continue
                        except Exception as exc:
                            log(
                                f"FAILED {model_name} {fmt_name} batch {b} ctx {ctx} {m}: {type(exc).__name__}: {exc}"
                            )
                            continue
                        r.update(
                            model=model_name, scheme=fmt_name, copy_GBps=copy_gbps, mm_TFLOPs=mm_tflops, **env
                        )
                        r["mbu"] = r["achieved_GBps"] / copy_gbps if copy_gbps else None
                        base = baselines.get(b) if ctx == prompt else None
                        r["baseline"] = {"name": base["name"], "tok_s": base["tok_s"]} if base else None
                        r["speedup_vs_baseline"] = (
                            r["tok_s"] / base["tok_s"] if base and base.get("tok_s") else None
                        )
                        results.append(r)
                        log(_row(r))
                        if out:  # written as it goes, so a run cut short keeps what it measured
                            write_results(results, out)
            if prefill and not scheme.int8_activations:  # prefill never takes the one-row GEMV
                try:
                    r = bench_prefill(model, prefill, repeats, device, mode)
                    r.update(
                        model=model_name, scheme=fmt_name, copy_GBps=copy_gbps, mm_TFLOPs=mm_tflops, **env
                    )
                    r["mfu"] = r["TFLOPs"] / mm_tflops if mm_tflops else None
                    results.append(r)
                    log(_row(r))
                    if out:
                        write_results(results, out)
                except Exception as exc:
                    log(f"FAILED prefill {model_name} {fmt_name}: {type(exc).__name__}: {exc}")
            restore_linears(model, originals)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if not results:
        raise TricoError("no configuration of the grid could run (the lines above say why); nothing written")
    return results


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "-" if v is None else format(v, spec) + unit


def _row(r: dict) -> str:
    if r["bench"] == "prefill":
        return (
            f"{r['model']:<12} {r['scheme']:<10} prefill {r['prompt']:>5}: ttft {r['ttft_ms']:8.1f} ms  "
            f"{r['TFLOPs']:6.1f} TFLOP/s  ({_fmt(r.get('mfu'), '.2f')} of matmul peak; "
            f"eager {_fmt(r.get('eager_ttft_ms'), '.1f', ' ms')})"
        )
    return (
        f"{r['model']:<12} {r['scheme']:<10} b{r['batch']:<3} ctx {r['context']:<5} {r['decode_mode']:<7} "
        f"{r['tok_s']:9.1f} tok/s  {r['ms_per_token']:7.2f} ms/step  MBU {_fmt(r.get('mbu'), '.2f')}  "
        f"vs HF {_fmt(r.get('speedup_vs_baseline'), '.2f', 'x')}  peak {_fmt(r.get('peak_mem_GiB'), '.1f', ' GiB')}"
    )


def table(results: list[dict]) -> str:
    """The short summary printed last."""
    return "\n".join(_row(r) for r in results)


def write_results(results: list[dict], path: str | Path) -> Path:
    """Write the JSON list (one object per configuration)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = json.loads(
        json.dumps(results, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))
    )
    path.write_text(json.dumps(clean, indent=1) + "\n")
    return path
