"""Decode-step inputs of one layer taken from a real run of trico's PyTorch model (and its output)."""

from __future__ import annotations

import torch

from trico.engine.kv_cache import StaticKVCache
from trico.hls.frontend import DecodeInputs


@torch.no_grad()
def capture_layers(
    model: torch.nn.Module, tokens: list[int], layers: list[int], n_steps: int = 1
) -> dict[int, tuple[list[DecodeInputs], list[torch.Tensor]]]:
    """Prefill tokens[:-n_steps], then decode the last n_steps tokens one at a time.

    Returns, per requested layer, the inputs of each decode step (hidden state, that layer's KV cache
    before the step, RoPE rows) and the layer's fp32 output computed by the PyTorch model itself.
    """
    ctx = len(tokens)
    cache = StaticKVCache(model.config, 1, ctx)
    result: dict[int, tuple[list[DecodeInputs], list[torch.Tensor]]] = {i: ([], []) for i in layers}
    pending: dict[int, DecodeInputs] = {}

    def hooks_for(i: int):  # noqa: ANN202
        def pre(_m, args):  # noqa: ANN001, ANN202
            x, cos, sin, input_pos, _cache = args
            if x.shape[1] == 1:
                k, v = cache.keys_values(i)
                pending[i] = DecodeInputs(
                    x.detach().clone(),
                    int(input_pos[0]),
                    k[0].detach().clone(),
                    v[0].detach().clone(),
                    cos[0].clone(),
                    sin[0].clone(),
                )

        def post(_m, _args, out):  # noqa: ANN001, ANN202
            if i in pending:
                result[i][0].append(pending.pop(i))
                result[i][1].append(out.detach().clone())

        return pre, post

    handles = []
    for i in layers:
        pre, post = hooks_for(i)
        mod = model.model.layers[i]
        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    try:
        n_prefill = ctx - n_steps
        t = torch.tensor([tokens], dtype=torch.long)
        model.prefill(t[:, :n_prefill], torch.arange(n_prefill), cache)
        for p in range(n_prefill, ctx):
            model.decode(t[:, p : p + 1], torch.tensor([p]), cache)
    finally:
        for h in handles:
            h.remove()
    return result


def capture_decode_steps(
    model: torch.nn.Module, tokens: list[int], layer: int, n_steps: int = 1
) -> tuple[list[DecodeInputs], list[torch.Tensor]]:
    """capture_layers for one layer: (inputs per decode step, PyTorch outputs per decode step)."""
    return capture_layers(model, tokens, [layer], n_steps)[layer]


@torch.no_grad()
def greedy_reference(model: torch.nn.Module, prompt: list[int], n_new: int, max_len: int) -> list[int]:
    """The next n_new greedy tokens of trico's PyTorch model (prefill, then decode steps)."""
    from trico.engine.generator import Generator

    gen = Generator(model, StaticKVCache(model.config, 1, max_len))
    out = [int(gen.prefill(torch.tensor([prompt], dtype=torch.long))[0])]
    while len(out) < n_new:
        out.append(int(gen.decode()[0]))
    return out


def calibration_tokens(tokenizer, n: int) -> list[int]:  # noqa: ANN001 - trico Tokenizer
    """The first n tokens of the calibration text (WikiText-2 validation split; never the test split)."""
    from trico.errors import TricoError
    from trico.eval.data import data_file

    ids = tokenizer.encode(data_file("wikitext2-valid.txt").read_text()[: 40 * n])[:n]
    if len(ids) < n:
        raise TricoError(f"the calibration text has only {len(ids)} tokens, {n} needed")
    return list(ids)
