"""The decode step captured in a CUDA graph (or compiled with torch.compile reduce-overhead).

`GraphedDecodeStep` wraps a step `(token [B, 1], pos [1]) -> next token [B]` that works on static
device buffers. On its first call it warms the step up on a side stream, captures one step into
a graph and replays it from then on: no Python, no launch overhead, no host synchronization and
no allocation per token (the graph's memory pool is fixed at capture). Warm-up and capture run the
real step for the position at hand, so the KV-cache entries they write are the ones the replay
writes again.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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
    """Put a Generator's decode step on the CUDA fast path: fused layers plus graph (or compile) mode.

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
    step = _with_int8_activations(generator._decode_step) if int8_activations else generator._decode_step
    if mode == "graph":
        sampler_gen = getattr(generator.sampler, "generator", None)
        generator.decode_step = GraphedDecodeStep(step, (sampler_gen,))
    elif mode == "eager":
        generator.decode_step = step
    else:
        raise ValueError(f"unknown decode mode {mode!r} (graph, compile or eager)")
