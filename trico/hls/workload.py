"""Decode-step inputs of one layer taken from a real run of trico's PyTorch model (and its output)."""

from __future__ import annotations

import torch

from trico.engine.kv_cache import StaticKVCache
from trico.hls.frontend import DecodeInputs


@torch.no_grad()
def capture_decode_steps(
    model: torch.nn.Module, tokens: list[int], layer: int, n_steps: int = 1
) -> tuple[list[DecodeInputs], list[torch.Tensor]]:
    """Prefill tokens[:-n_steps], then decode the last n_steps tokens one at a time.

    Returns, for each decode step, the inputs of `layer` (hidden state, its KV cache before the step,
    RoPE rows) and that layer's fp32 output computed by the PyTorch model itself.
    """
    cfg = model.config
    ctx = len(tokens)
    cache = StaticKVCache(cfg, 1, ctx)
    captured: list[DecodeInputs] = []
    outputs: list[torch.Tensor] = []
    mod = model.model.layers[layer]
    state: dict = {}

    def pre(_m, args):  # noqa: ANN001, ANN202
        x, cos, sin, input_pos, _cache = args
        if x.shape[1] == 1:
            pos = int(input_pos[0])
            k, v = cache.keys_values(layer)
            state["in"] = DecodeInputs(
                x.detach().clone(),
                pos,
                k[0].detach().clone(),
                v[0].detach().clone(),
                cos[0].clone(),
                sin[0].clone(),
            )

    def post(_m, _args, out):  # noqa: ANN001, ANN202
        if "in" in state:
            captured.append(state.pop("in"))
            outputs.append(out.detach().clone())

    hooks = [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    try:
        n_prefill = ctx - n_steps
        t = torch.tensor([tokens], dtype=torch.long)
        model.prefill(t[:, :n_prefill], torch.arange(n_prefill), cache)
        for p in range(n_prefill, ctx):
            model.decode(t[:, p : p + 1], torch.tensor([p]), cache)
    finally:
        for h in hooks:
            h.remove()
    return captured, outputs
