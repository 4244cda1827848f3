"""The decode step captured in a CUDA graph (or compiled with torch.compile reduce-overhead), and
prompt chunks replayed from graphs once their shape repeats.

`GraphedDecodeStep` wraps a step `(token [B, 1], pos [1]) -> next token [B]` that works on static
device buffers. On its first call it warms the step up on a side stream, captures one step into
a graph and replays it from then on: no Python, no launch overhead, no host synchronization and
no allocation per token (the graph's memory pool is fixed at capture). Warm-up and capture run the
real step for the position at hand, so the KV-cache entries they write are the ones the replay
writes again.

`GraphedPrefill` does the same for prompt chunks. A 2048-token prefill of a quantized model launches
~300 kernels whose host cost (~30-60 us each on the H200 machine) is as long as their GPU time, so its
wall time followed the host (docs/gpu-engine-history.md). A graph per chunk shape takes the host off the
critical path; since capturing costs more than one eager prefill, a shape is captured only when it
comes again (benchmarks, a server seeing the same prompt lengths). `GraphedForward` replays whole
windows (all positions' logits) for `trico eval`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Prefill = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]
"""(tokens [B, T], positions [T], index of the last real token [1] or None) -> its logits [B, vocab]."""

PREFILL_BUCKET = 64
"""A replayed prompt chunk is right-padded to a multiple of this many tokens, so chunks of nearby lengths
(a chat's turns) share one graph; eager runs are not padded."""

PREFILL_GRAPHS = True
"""Replay prompt chunks of a repeated shape from CUDA graphs (False: always eager; for A/B runs)."""


class GraphedDecodeStep:
    """A decode step replayed from a CUDA graph, captured lazily on the first call."""

    def __init__(self, step: Step, generators: tuple[torch.Generator, ...] = (), warmup: int = 2) -> None:
        self.step = step
        self.generators = tuple(g for g in generators if g is not None)
        self.warmup = warmup
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_in: tuple[torch.Tensor, torch.Tensor] | None = None
        self.static_out: torch.Tensor | None = None

    def capture(self, token: torch.Tensor, pos: torch.Tensor) -> None:
        """Warm up on a side stream (Triton compiles, cuBLAS picks algorithms), then capture one step."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.step(token, pos)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        for g in self.generators:  # sampling noise must advance on every replay
            graph.register_generator_state(g)
        with torch.cuda.graph(graph):
            out = self.step(token, pos)
        self.graph, self.static_in, self.static_out = graph, (token, pos), out

    def __call__(self, token: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """Next tokens [B] for the buffers captured with (the same tensors every call)."""
        if self.graph is None:
            self.capture(token, pos)
        assert self.static_in is not None and token is self.static_in[0] and pos is self.static_in[1], (
            "a graphed step must be called with the buffers it was captured with"
        )
        self.graph.replay()
        return self.static_out


@contextlib.contextmanager
def prefill_graphs(enabled: bool) -> Iterator[None]:
    """Within the block, prompt chunks are (not) replayed from graphs (`PREFILL_GRAPHS`)."""
    global PREFILL_GRAPHS
    saved, PREFILL_GRAPHS = PREFILL_GRAPHS, enabled
    try:
        yield
    finally:
        PREFILL_GRAPHS = saved


@dataclass
class _PrefillGraph:
    graph: torch.cuda.CUDAGraph
    tokens: torch.Tensor  # [B, padded length]
    positions: torch.Tensor
    last: torch.Tensor  # [1]: index of the last real token
    logits: torch.Tensor


class _ShapeGraphs:
    """Graphs kept by input shape: a shape runs eagerly `captures_after` times, is captured on its next call
    (after a warm-up run on a side stream, whose result that call returns) and replayed from then on. Up to
    `max_graphs` graphs, least recently used dropped first, share one memory pool, so what a replay returns
    is valid until the next call. A shape whose capture fails (an op that cannot be captured) runs eagerly
    from then on, with one warning."""

    def __init__(self, captures_after: int, max_graphs: int) -> None:
        self.captures_after = captures_after
        self.max_graphs = max_graphs
        self.seen: dict[tuple, int] = {}
        self.graphs: OrderedDict[tuple, object] = OrderedDict()
        self.eager_only: set[tuple] = set()
        self.pool = None

    def _lookup(self, key: tuple):  # noqa: ANN202 - the subclass's entry, or None
        """The replayable entry of this shape (marked most recently used), else None, counting the call."""
        entry = self.graphs.get(key)
        if entry is not None:
            self.graphs.move_to_end(key)
        else:
            self.seen[key] = self.seen.get(key, 0) + 1
        return entry

    def _eager(self, key: tuple, on_cuda: bool) -> bool:
        """Whether a call of this shape with no graph yet runs eagerly."""
        return not on_cuda or key in self.eager_only or self.seen[key] <= self.captures_after

    def _capture(
        self, key: tuple, run: Callable[[], torch.Tensor], what: str
    ) -> tuple[torch.Tensor, tuple | None]:
        """The warm-up's result of `run` and (graph, its output), or None where capture failed."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            warm = run().clone()
        torch.cuda.current_stream().wait_stream(side)
        if len(self.graphs) >= self.max_graphs:
            self.graphs.popitem(last=False)
        if self.pool is None:
            self.pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, pool=self.pool):
                out = run()
        except RuntimeError as exc:  # the warm-up's result is right; only the replay is lost
            self.eager_only.add(key)
            warnings.warn(f"{what} run eagerly: CUDA graph capture failed ({exc})", stacklevel=3)
            return warm, None
        return warm, (graph, out)


class GraphedPrefill(_ShapeGraphs):
    """Prompt chunks on CUDA, by (batch, padded length, first chunk or not): eager the first time a shape comes,
    captured on its second call, replayed from then on (`_ShapeGraphs`).

    A graph runs the chunk right-padded to a multiple of `PREFILL_BUCKET` tokens (where the cache has
    room) and takes the logits of its last real token (`Transformer.prefill`'s `last_index`), so lengths in
    one bucket share it. The cache must say which chunks start at position 0 (`cache.mark_first_chunk`),
    since a graph cannot read the positions on the host.
    """

    def __init__(self, prefill: Prefill, cache, captures_after: int = 1, max_graphs: int = 4) -> None:  # noqa: ANN001 - a StaticKVCache
        super().__init__(captures_after, max_graphs)
        self.prefill = prefill
        self.cache = cache

    def __call__(self, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """Logits of the last position [B, vocab] after writing tokens [B, T] at start..start+T-1."""
        b, t = tokens.shape
        padded = -(-t // PREFILL_BUCKET) * PREFILL_BUCKET
        if start + padded > self.cache.max_len:
            padded = t
        key = (b, padded, start == 0)
        entry = self._lookup(key)
        if entry is None or not PREFILL_GRAPHS:
            if self._eager(key, PREFILL_GRAPHS and tokens.is_cuda):
                return self.prefill(tokens, torch.arange(start, start + t, device=tokens.device), None)
            return self._capture_chunk(key, tokens, start)
        entry.tokens[:, :t].copy_(tokens)  # the padding keeps whatever ids it held: its results are unused
        entry.last.fill_(t - 1)
        if start != 0:
            torch.arange(start, start + padded, device=tokens.device, out=entry.positions)
        entry.graph.replay()
        return entry.logits

    def _capture_chunk(self, key: tuple, tokens: torch.Tensor, start: int) -> torch.Tensor:
        """Capture the chunk padded to its bucket; the warm-up's logits."""
        b, t = tokens.shape
        padded = key[1]
        static_tokens = torch.zeros(b, padded, dtype=tokens.dtype, device=tokens.device)
        static_tokens[:, :t].copy_(tokens)
        positions = torch.arange(start, start + padded, device=tokens.device)
        last = torch.full((1,), t - 1, dtype=torch.long, device=tokens.device)
        if start == 0:
            self.cache.mark_first_chunk(positions)
        logits, captured = self._capture(
            key, lambda: self.prefill(static_tokens, positions, last), f"prompt chunks of shape {key[:2]}"
        )
        if captured is not None:
            self.graphs[key] = _PrefillGraph(captured[0], static_tokens, positions, last, captured[1])
        return logits


Forward = Callable[[torch.Tensor], torch.Tensor]
"""tokens [B, T] at positions 0..T-1 -> logits [B, T, vocab] (a whole window, as perplexity scores it)."""


class GraphedForward(_ShapeGraphs):
    """Whole-window forwards on CUDA (evaluation windows), by shape: eager the first time a shape comes,
    captured on its second call, replayed from then on (`_ShapeGraphs`).

    `trico eval` scores tens of windows of one length; eagerly each one pays the host cost of every launch
    (~300-400 a forward), which on a small model is most of its time.
    """

    def __init__(self, forward: Forward, captures_after: int = 1, max_graphs: int = 2) -> None:
        super().__init__(captures_after, max_graphs)
        self.forward = forward

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits [B, T, vocab] of tokens [B, T]."""
        key = tuple(tokens.shape)
        entry = self._lookup(key)
        if entry is not None:
            graph, static_tokens, logits = entry
            static_tokens.copy_(tokens)
            graph.replay()
            return logits
        if self._eager(key, tokens.is_cuda):
            return self.forward(tokens)
        static_tokens = tokens.clone()
        logits, captured = self._capture(key, lambda: self.forward(static_tokens), f"windows of shape {key}")
        if captured is not None:
            self.graphs[key] = (captured[0], static_tokens, captured[1])
        return logits


def compiled_step(step: Step) -> Step:
    """The alternative: torch.compile(mode='reduce-overhead'), which captures CUDA graphs itself."""
    return torch.compile(step, mode="reduce-overhead", fullgraph=False)


def _without_trico_kernels(step: Step) -> Step:
    """The step called with trico's CUDA kernels switched off (so a compiled step traces plain torch)."""
    from trico.kernels import torch_reference

    def run(token: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        with torch_reference():
            return step(token, pos)

    return run


def _with_int8_activations(step: Step) -> Step:
    """The step run inside int8_activations(): one-row GEMVs quantize x to int8 (a graph keeps that)."""
    from trico.kernels import int8_activations

    def run(token: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        with int8_activations():
            return step(token, pos)

    return run


def enable_fast_decode(generator, mode: str = "graph", int8_activations: bool = False) -> None:  # noqa: ANN001 - trico.engine.generator.Generator
    """Put a Generator's decode step on the CUDA fast path: fused layers plus graph (or compile) mode;
    in graph mode prompt chunks of a repeated shape are replayed from graphs too (`GraphedPrefill`).

    With int8_activations the one-row decode GEMVs of quantized layers run on int8 activations
    (trico.kernels.gemv_a8: faster, slightly less exact). Does nothing on CPU, where the torch
    reference path runs unchanged.
    """
    if generator.device.type != "cuda":
        return
    if mode == "compile":
        # The alternative engine: inductor compiles the plain torch model (its own fused Triton
        # kernels) and captures CUDA graphs itself; trico's kernels stay out of the traced code.
        generator.decode_step = _without_trico_kernels(compiled_step(generator._decode_step))
        return
    from trico.engine.fused import fuse_model_

    fuse_model_(generator.model)
    if mode == "graph":
        generator.prefill_chunk = GraphedPrefill(generator.prefill_at, generator.cache)
    step = _with_int8_activations(generator._decode_step) if int8_activations else generator._decode_step
    if mode == "graph":
        sampler_gen = getattr(generator.sampler, "generator", None)
        generator.decode_step = GraphedDecodeStep(step, (sampler_gen,))
    elif mode == "eager":
        generator.decode_step = step
    else:
        raise ValueError(f"unknown decode mode {mode!r} (graph, compile or eager)")
