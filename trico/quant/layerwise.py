"""Run calibration data through a Llama model one decoder block at a time and collect linear-input statistics.

GPTQ and AWQ quantize block i with inputs produced by the already-quantized blocks 0..i-1 (the
sequential scheme of both papers), so only one block's activations are ever held. Linears that read
the same tensor (q/k/v, gate/up) share one statistics object, which lets methods treat them as one
matrix with stacked rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from trico.errors import TricoError


@dataclass
class InputStats:
    """Statistics of the inputs x [T, K] one linear (or several sharing an input) saw."""

    k: int
    xtx: torch.Tensor | None = None
    """Sum over tokens of x^T x, fp32 [K, K] (when requested)."""
    abs_sum: torch.Tensor = field(default=None)  # type: ignore[assignment]
    abs_max: torch.Tensor = field(default=None)  # type: ignore[assignment]
    n: int = 0

    def __post_init__(self) -> None:
        self.abs_sum = torch.zeros(self.k)
        self.abs_max = torch.zeros(self.k)

    def add(self, x: torch.Tensor, want_xtx: bool, weight: torch.Tensor | None = None) -> None:
        """Accumulate a batch of inputs [..., K]; weight [...] (one per token) scales each token's x^T x term."""
        x = x.detach().reshape(-1, self.k).float()
        if not torch.isfinite(x).all():
            raise TricoError("calibration activations hold NaN or Inf values")
        self.abs_sum += x.abs().sum(0).cpu()
        self.abs_max = torch.maximum(self.abs_max, x.abs().amax(0).cpu())
        self.n += x.shape[0]
        if want_xtx:
            if weight is not None:
                x = x * weight.reshape(-1, 1).to(x).sqrt()
            xtx = (x.T @ x).cpu()
            self.xtx = xtx if self.xtx is None else self.xtx + xtx

    @property
    def abs_mean(self) -> torch.Tensor:
        """Mean |x| per input channel [K]."""
        return self.abs_sum / max(self.n, 1)


@dataclass
class BlockInputs:
    """Hidden states entering a block for every calibration sequence, plus the RoPE tables they need."""

    h: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    pos: torch.Tensor


def embed_calibration(model: nn.Module, tokens: torch.Tensor) -> BlockInputs:
    """Embedding output for calibration tokens [N, L] (the input of block 0)."""
    device = next(model.parameters()).device
    tokens = tokens.to(device)
    pos = torch.arange(tokens.shape[1], device=device)
    cos, sin = model.rotary(pos)
    # the blocks' own dtype (a bf16 model's linears refuse fp32 inputs); statistics are summed in fp32
    dtype = next(model.model.layers.parameters()).dtype
    return BlockInputs(model.model.embed_tokens(tokens).to(dtype), cos, sin, pos)


def block_forward(block: nn.Module, x: BlockInputs, chunk: int = 4) -> torch.Tensor:
    """Output of one decoder block over every calibration sequence (a few sequences at a time)."""
    outs = [block(x.h[i : i + chunk], x.cos, x.sin, x.pos, None) for i in range(0, x.h.shape[0], chunk)]
    return torch.cat(outs)


def attention_mass(block: nn.Module, x: BlockInputs, chunk: int = 4) -> torch.Tensor:
    """Attention each calibration token receives in this block [N, L], averaged over heads.

    A key's mass is the sum over the (causal) queries of their softmax weight on it; a sequence's masses
    sum to L (mean 1). The first token of a sequence, the attention sink, typically receives a third or
    more of all attention.
    """
    from trico.models.llama import apply_rope

    attn = block.self_attn
    n_heads, kv_heads, hd = attn.n_heads, attn.n_kv_heads, attn.head_dim
    rep = n_heads // kv_heads
    out = []
    for i in range(0, x.h.shape[0], chunk):
        h = block.input_layernorm(x.h[i : i + chunk])
        b, t, _ = h.shape
        q = attn.q_proj(h).view(b, t, n_heads, hd).transpose(1, 2)
        k = attn.k_proj(h).view(b, t, kv_heads, hd).transpose(1, 2)
        q, k = apply_rope(q, x.cos, x.sin).float(), apply_rope(k, x.cos, x.sin).float()
        # the query heads of one KV head (GQA) as one matrix: one matmul per KV head, no repeated keys
        s = (q.reshape(b, kv_heads, rep * t, hd) * hd**-0.5) @ k.transpose(-1, -2)
        s = s.view(b, kv_heads, rep, t, t)
        s.masked_fill_(torch.ones(t, t, dtype=torch.bool, device=s.device).triu(1), float("-inf"))
        out.append(torch.softmax(s, -1).sum(-2).mean((1, 2)).cpu())
    return torch.cat(out)


def collect_block_stats(
    block: nn.Module,
    x: BlockInputs,
    linears: dict[str, nn.Module],
    want_xtx: bool,
    chunk: int = 4,
    token_weights: dict[str, torch.Tensor] | None = None,
) -> dict[str, InputStats]:
    """Run the block over the calibration inputs and gather the input statistics of the given linears.

    token_weights {name: [N, L]} weights each calibration token's term in that linear's x^T x (and in the
    x^T x of the linears sharing its input).
    """
    stats: dict[str, InputStats] = {}
    last: dict[str, object] = {"x": None, "stats": None, "i": 0}
    token_weights = token_weights or {}

    def hook(name: str):  # noqa: ANN202
        def fn(module: nn.Module, args: tuple) -> None:
            inp = args[0]
            if last["x"] is inp:  # q/k/v and gate/up read the same tensor: share its statistics
                st = last["stats"]
                if name not in stats:
                    stats[name] = st
                return
            st = stats.get(name)
            if st is None:
                st = stats[name] = InputStats(inp.shape[-1])
            i, weight = last["i"], token_weights.get(name)
            st.add(inp, want_xtx, None if weight is None else weight[i : i + inp.shape[0]])
            last["x"], last["stats"] = inp, st

        return fn

    handles = [m.register_forward_pre_hook(hook(n)) for n, m in linears.items()]
    try:
        for i in range(0, x.h.shape[0], chunk):
            last["i"] = i
            block(x.h[i : i + chunk], x.cos, x.sin, x.pos, None)
            last["x"] = last["stats"] = None
    finally:
        for h in handles:
            h.remove()
    return stats


def shared_groups(names: list[str], stats: dict[str, InputStats]) -> Iterator[list[str]]:
    """Group layer names whose inputs were the same tensor (same statistics object), in order."""
    seen: dict[int, list[str]] = {}
    for n in names:
        seen.setdefault(id(stats[n]), []).append(n)
    yield from seen.values()


def blocks_with_targets(
    model: nn.Module, targets: dict[str, nn.Module]
) -> Iterator[tuple[int, nn.Module, dict[str, nn.Module]]]:
    """(index, block, {full name: linear}) for every decoder block, with the targets inside it."""
    for i, block in enumerate(model.model.layers):
        prefix = f"model.layers.{i}."
        yield i, block, {n: m for n, m in targets.items() if n.startswith(prefix)}


def head_stats(model: nn.Module, x: BlockInputs, want_xtx: bool) -> InputStats:
    """Statistics of lm_head's input (final-norm output) from the last block's outputs."""
    st = InputStats(x.h.shape[-1])
    for i in range(0, x.h.shape[0], 4):
        st.add(model.model.norm(x.h[i : i + 4]), want_xtx)
    return st


@contextmanager
def single_thread() -> Iterator[None]:
    """Run small per-column ops on one thread: on a shared CPU the intra-op pool's hand-offs cost more than they save."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


TokenWeights = Callable[[nn.Module, BlockInputs, dict[str, nn.Linear]], dict[str, torch.Tensor]]
"""(block, its calibration inputs, {name: linear}) -> {name: per-token x^T x weights [N, L]}."""

BlockQuantizer = Callable[
    [nn.Module | None, dict[str, nn.Linear], dict[str, "InputStats"]], dict[str, nn.Module]
]
"""(block or None for lm_head, {name: linear}, {name: input statistics}) -> {name: quantized layer}."""


def quantize_blockwise(
    model: nn.Module,
    targets: dict[str, nn.Linear],
    tokens: torch.Tensor,
    label: str,
    want_xtx: bool,
    quantize_block: BlockQuantizer,
    progress: bool,
    token_weights: TokenWeights | None = None,
) -> dict[str, nn.Module]:
    """Walk the decoder blocks in order, calibration statistics first, then `quantize_block` on each.

    Each block's inputs come from running the previous blocks as the handler left them (quantized
    when it swapped their layers, float otherwise); a targeted lm_head comes last, with block None.
    `token_weights` gives per-token weights of the blocks' x^T x statistics (see collect_block_stats).
    """
    x = embed_calibration(model, tokens)
    blocks = list(blocks_with_targets(model, targets))
    if progress:
        from tqdm import tqdm

        blocks = tqdm(blocks, desc=label, unit="block")
    out: dict[str, nn.Module] = {}
    for _, block, lins in blocks:
        if lins:
            weights = token_weights(block, x, lins) if token_weights is not None else None
            stats = collect_block_stats(block, x, lins, want_xtx=want_xtx, token_weights=weights)
            out.update(quantize_block(block, lins, stats))
        x.h = block_forward(block, x)
    if "lm_head" in targets:
        head = {"lm_head": targets["lm_head"]}
        out.update(quantize_block(None, head, {"lm_head": head_stats(model, x, want_xtx)}))
    return out
