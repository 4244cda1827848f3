"""Perplexity over fixed windows, and KL divergence / top-1 agreement against a reference model.

The KL mode follows llama.cpp's `--kl-divergence`: for every scored position, KL(P_ref || P_model)
over the full vocabulary, averaged; top-1 agreement is how often both argmaxes coincide.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from trico.errors import TricoError


@dataclass
class EvalResult:
    """What `evaluate` measured (reference fields are None without a reference model)."""

    ppl: float
    nll: float
    n_tokens: int
    windows: int
    ctx: int
    stride: int
    ppl_ref: float | None = None
    nll_ref: float | None = None
    dppl: float | None = None
    kl_mean: float | None = None
    kl_p99: float | None = None
    top1: float | None = None

    def to_dict(self) -> dict:
        """JSON-friendly dict."""
        return asdict(self)


def window_starts(n_tokens: int, ctx: int, stride: int, windows: int | None) -> list[int]:
    """Start offsets of the evaluation windows (each ctx tokens long)."""
    if ctx < 2:
        raise TricoError(f"context must be >= 2 tokens, got {ctx}")
    if stride < 1 or stride > ctx:
        raise TricoError(f"stride must be in [1, ctx={ctx}], got {stride}")
    if n_tokens < ctx:
        raise TricoError(f"text has {n_tokens} tokens, fewer than one {ctx}-token window")
    starts = list(range(0, n_tokens - ctx + 1, stride))
    if windows is not None:
        if windows < 1:
            raise TricoError(f"window count must be >= 1, got {windows}")
        if windows > len(starts):
            raise TricoError(f"text has room for {len(starts)} windows of {ctx} tokens, {windows} requested")
        starts = starts[:windows]
    return starts


def _model_device(model: torch.nn.Module) -> torch.device:
    # Any callable tokens -> logits works (e.g. another library's model wrapped in a lambda).
    try:
        return next(model.parameters()).device
    except (AttributeError, StopIteration):
        return torch.device("cpu")


def _logits(model: torch.nn.Module, window: torch.Tensor, cache_factory: Callable | None) -> torch.Tensor:
    if cache_factory is None:
        return model(window)
    weight = next(model.parameters())
    cache = cache_factory(model.config, 1, window.shape[1], dtype=weight.dtype, device=weight.device)
    return model(window, torch.arange(window.shape[1], device=window.device), cache)


def window_runner(
    model: torch.nn.Module, cache_factory: Callable | None = None, graphs: bool = True
) -> Callable[[torch.Tensor], torch.Tensor]:
    """tokens [1, ctx] -> logits [1, ctx, vocab] of one model: eager, or replayed from a CUDA graph once the
    window shape repeats (`graphs`, a trico model on CUDA). With `cache_factory` the graphed form makes the
    cache once and every window rewrites all of it (eagerly each window gets a fresh one: the same result)."""
    from trico.models.llama import Transformer

    if not (graphs and _model_device(model).type == "cuda" and isinstance(model, Transformer)):
        return lambda window: _logits(model, window, cache_factory)
    from trico.engine.cuda_graphs import GraphedForward

    if cache_factory is None:
        return GraphedForward(model)
    # window length -> (positions, cache), kept for as long as a graph may still replay into them
    made: dict[int, tuple] = {}

    def through_cache(window: torch.Tensor) -> torch.Tensor:
        t = window.shape[1]
        if t not in made:
            weight = next(model.parameters())
            cache = cache_factory(model.config, 1, t, dtype=weight.dtype, device=weight.device)
            positions = torch.arange(t, device=window.device)
            cache.mark_first_chunk(positions)  # a graph cannot read positions on the host
            made[t] = (positions, cache)
        positions, cache = made[t]
        return model(window, positions, cache)

    return GraphedForward(through_cache)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    tokens: torch.Tensor,
    ctx: int = 512,
    windows: int | None = 40,
    stride: int | None = None,
    reference: torch.nn.Module | None = None,
    progress: bool = True,
    cache_factory: Callable | None = None,
    graphs: bool = True,
) -> EvalResult:
    """Perplexity of `model` on `tokens` over windows of ctx tokens; with `reference`, also KL/top-1/dPPL.

    Non-overlapping windows (stride == ctx) score the ctx - 1 predicted tokens of each window. With
    overlap, a window scores only its last `stride` positions, which earlier windows did not score.
    With `cache_factory` (e.g. an INT8 KV cache), each window runs through a fresh cache of that kind,
    so the cache's own rounding is part of what is measured. On CUDA a trico model's windows are replayed
    from a CUDA graph from the second one on (`graphs`; `window_runner`).
    """
    stride = ctx if stride is None else stride
    starts = window_starts(int(tokens.numel()), ctx, stride, windows)
    for m in (model, reference):
        positions = getattr(getattr(m, "config", None), "max_seq_len", None)
        if positions is not None and ctx > positions:
            raise TricoError(f"a {ctx}-token window is longer than the model's {positions} positions")
    device = _model_device(model)
    ref_device = _model_device(reference) if reference is not None else None
    logits_of = window_runner(model, cache_factory, graphs)
    ref_logits_of = window_runner(reference, None, graphs) if reference is not None else None
    nll_sum, nll_ref_sum, kl_sum, top1_hits, n = 0.0, 0.0, 0.0, 0, 0
    kls: list[torch.Tensor] = []
    iterator = starts
    if progress:
        from tqdm import tqdm

        iterator = tqdm(starts, desc="eval", unit="window", leave=False)
    for i, start in enumerate(iterator):
        window = tokens[start : start + ctx].view(1, -1)
        first = 0 if (i == 0 or stride == ctx) else ctx - 1 - stride
        # scored on the model's device: only sums cross to the host (a window's log-probs are ~100 MB)
        targets = window[0, first + 1 :].to(device).view(-1, 1)
        logp = F.log_softmax(logits_of(window.to(device))[0, first:-1].float(), dim=-1)
        nll_sum += -logp.gather(-1, targets).sum().item()
        n += targets.numel()
        if reference is not None:
            logits_ref = ref_logits_of(window.to(ref_device))[0, first:-1]
            logp_ref = F.log_softmax(logits_ref.to(device).float(), dim=-1)
            nll_ref_sum += -logp_ref.gather(-1, targets).sum().item()
            kl = (logp_ref.exp() * (logp_ref - logp)).sum(-1)
            kls.append(kl.cpu())
            kl_sum += kl.sum().item()
            top1_hits += (logp_ref.argmax(-1) == logp.argmax(-1)).sum().item()
    nll = nll_sum / n
    result = EvalResult(ppl=math.exp(nll), nll=nll, n_tokens=n, windows=len(starts), ctx=ctx, stride=stride)
    if reference is not None:
        result.nll_ref = nll_ref_sum / n
        result.ppl_ref = math.exp(result.nll_ref)
        result.dppl = result.ppl - result.ppl_ref
        result.kl_mean = kl_sum / n
        result.kl_p99 = torch.quantile(torch.cat(kls), 0.99).item()
        result.top1 = top1_hits / n
    return result
