"""AWQ (Lin et al., 2024): activation-aware per-input-channel scaling, then clipping search, then RTN.

For each group of linears that read one tensor, search s = mean|x|^alpha (alpha on a grid) minimizing
the output error of quantizing W * s and feeding x / s; fold 1/s into the op that produces x (the RMSNorm
before q/k/v and gate/up, up_proj's rows before down_proj, v_proj's rows before o_proj when there is no
GQA), so the float model is unchanged and no extra op runs at inference. Then search, per weight group,
a clipping ratio of the range minimizing the output error. Errors are measured exactly from the input
second moment X^T X: ||X (W_q - W)^T||^2 = sum_n d_n (X^T X) d_n^T, so every token counts at matmul cost.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from trico.quant.api import register_method, set_module
from trico.quant.grid import Grid, dequantize_codes, fit_scales, quantize_codes
from trico.quant.layerwise import quantize_blockwise
from trico.quant.qlinear import QLinear
from trico.quant.schemes import IntScheme

N_ALPHA = 20  # alpha in 0, 0.05, ..., 0.95, as in the paper
DUO = True  # also try AutoAWQ's duo scaling candidates
SCALE_GQA_O = True  # with GQA, scale o_proj's inputs with one factor per KV channel, folded into v_proj
CLIP_RATIOS = [1.0 - 0.05 * i for i in range(11)]  # 1.0 down to 0.5, as in the paper, in 11 steps
NO_CLIP = ("q_proj", "k_proj")  # their errors act through softmax(q k^T); AWQ leaves their range alone


def _fake(w: torch.Tensor, grid: Grid, group: int, clip: torch.Tensor | None = None) -> torch.Tensor:
    scale, mins = fit_scales(w, grid, group, clip)
    return dequantize_codes(quantize_codes(w, scale, mins, grid, group), scale, mins, grid, group)


def output_error(d: torch.Tensor, xtx: torch.Tensor) -> float:
    """sum over rows of d (X^T X) d^T: the squared output error of a weight error d [N, K]."""
    return float(((d @ xtx) * d).sum())


def _weight_mean(w: torch.Tensor, group: int) -> torch.Tensor:
    """Mean over rows of |w| relative to its group's absmax, per input channel [K] (AutoAWQ's duo scaling)."""
    n, k = w.shape
    wg = w.abs().view(n, k // group, group)
    return (wg / (wg.amax(-1, keepdim=True) + 1e-6)).view(n, k).mean(0)


def kv_head_scale(s: torch.Tensor, n_kv: int, head_dim: int) -> torch.Tensor:
    """Per-KV-channel scale [n_kv * head_dim] from s [n_heads * head_dim]: geometric mean over the query heads
    sharing each KV head (with GQA one v_proj row feeds several o_proj input channels)."""
    return s.view(n_kv, -1, head_dim).log().mean(1).exp().reshape(-1)


def expand_kv_scale(t: torch.Tensor, n_heads: int, n_kv: int) -> torch.Tensor:
    """s [n_heads * head_dim] from a per-KV-channel scale t (query head h reads KV head h // (n_heads / n_kv))."""
    return t.view(n_kv, 1, -1).expand(n_kv, n_heads // n_kv, t.numel() // n_kv).reshape(-1)


def search_scale(
    w: torch.Tensor,
    x_abs_mean: torch.Tensor,
    xtx: torch.Tensor,
    grid: Grid,
    group: int,
    tie: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Per-input-channel scale s [K] (alpha = 0 gives s = 1, plain RTN) with the least output error.

    Candidates are s = mean|x|^alpha (the paper) and s = mean|x|^alpha / mean|w|^(1 - alpha) (AutoAWQ's
    duo scaling, which also weighs how large a channel's weights are within their groups).
    """
    best, best_s = float("inf"), torch.ones_like(x_abs_mean)
    base = x_abs_mean.clamp_min(1e-5)
    w_mean = _weight_mean(w, group).clamp_min(1e-5)
    for i in range(N_ALPHA):
        alpha = i / N_ALPHA
        for s in (base.pow(alpha), base.pow(alpha) / w_mean.pow(1 - alpha))[: 1 + DUO]:
            s = tie(s) if tie is not None else s
            s = s / (s.max() * s.min()).sqrt()
            err = output_error(_fake(w * s, grid, group) / s - w, xtx)
            if err < best:
                best, best_s = err, s
    return best_s


def search_clip(w: torch.Tensor, xtx: torch.Tensor, grid: Grid, group: int) -> torch.Tensor:
    """Per-(row, group) clipping ratio [N, K/group] minimizing each group's own output error."""
    n, k = w.shape
    ng = k // group
    blocks = torch.stack([xtx[g * group : (g + 1) * group, g * group : (g + 1) * group] for g in range(ng)])
    best_err = torch.full((n, ng), float("inf"))
    best = torch.ones(n, ng)
    for r in CLIP_RATIOS:
        ratio = torch.full((n, ng), r)
        d = (_fake(w, grid, group, ratio) - w).view(n, ng, group)
        err = torch.einsum("ngi,gij,ngj->ng", d, blocks, d)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, ratio, best)
    return best


def _fold_into_rows(producer: nn.Module, s: torch.Tensor) -> None:
    """Divide the outputs of the op producing x by s (norm weight or linear rows)."""
    if isinstance(producer, nn.Linear):
        producer.weight.div_(s.to(producer.weight.dtype)[:, None])
        if producer.bias is not None:
            producer.bias.div_(s.to(producer.bias.dtype))
    else:
        producer.weight.div_(s.to(producer.weight.dtype))


def _scale_group(
    lins: list[nn.Linear],
    producer: nn.Module,
    stats,  # noqa: ANN001 - InputStats
    grid: Grid,
    group: int,
    heads: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """Search and apply one input scale for linears sharing an input; returns s [K].

    heads = (n_heads, n_kv_heads, head_dim) when the producer is a GQA v_proj: s is then tied across the
    query heads that share a KV head, so that it can be folded into v_proj's fewer rows.
    """
    xtx = stats.xtx.float()
    w = torch.cat([lin.weight.detach().float().cpu() for lin in lins])
    tie = fold = None
    if heads is not None:
        nh, nkv, hd = heads
        tie = lambda v: expand_kv_scale(kv_head_scale(v, nkv, hd), nh, nkv)  # noqa: E731
        fold = lambda v: kv_head_scale(v, nkv, hd)  # noqa: E731
    s = search_scale(w, stats.abs_mean, xtx, grid, group, tie)
    for lin in lins:
        lin.weight.mul_(s.to(lin.weight.device, lin.weight.dtype)[None, :])
    _fold_into_rows(producer, (fold(s) if fold else s).to(producer.weight.device))
    # the inputs are now x / s: keep the second moment consistent for the clipping search
    stats.xtx = stats.xtx / (s[:, None] * s[None, :])
    return s


def awq_scale_block(block: nn.Module, lins: dict[str, nn.Linear], stats, scheme: IntScheme, config) -> None:  # noqa: ANN001
    """Apply AWQ scaling to one decoder block in place (float weights still)."""
    attn, mlp = block.self_attn, block.mlp
    grid = Grid(scheme.bits, scheme.symmetric)

    def present(*mods: nn.Module) -> list[nn.Linear]:
        return [m for m in mods if any(m is lin for lin in lins.values())]

    def stats_of(mod: nn.Module):  # noqa: ANN202
        return next(stats[n] for n, m in lins.items() if m is mod)

    if qkv := present(attn.q_proj, attn.k_proj, attn.v_proj):
        _scale_group(
            qkv, block.input_layernorm, stats_of(qkv[0]), grid, scheme.layer_group(qkv[0].in_features)
        )
    if present(attn.o_proj) and (config.n_heads == config.n_kv_heads or SCALE_GQA_O):
        o = attn.o_proj
        heads = (
            None
            if config.n_heads == config.n_kv_heads
            else (config.n_heads, config.n_kv_heads, config.head_dim)
        )
        _scale_group([o], attn.v_proj, stats_of(o), grid, scheme.layer_group(o.in_features), heads)
    if gu := present(mlp.gate_proj, mlp.up_proj):
        _scale_group(
            gu, block.post_attention_layernorm, stats_of(gu[0]), grid, scheme.layer_group(gu[0].in_features)
        )
    if present(mlp.down_proj):
        d = mlp.down_proj
        _scale_group([d], mlp.up_proj, stats_of(d), grid, scheme.layer_group(d.in_features))


def _clipped_qlinear(name: str, lin: nn.Linear, xtx: torch.Tensor, scheme: IntScheme) -> QLinear:
    grid = Grid(scheme.bits, scheme.symmetric)
    group = scheme.layer_group(lin.in_features)
    w = lin.weight.detach().float().cpu()
    clip = None if name.rsplit(".", 1)[-1] in NO_CLIP else search_clip(w, xtx.float(), grid, group)
    scale, mins = fit_scales(w, grid, group, clip)
    codes = quantize_codes(w, scale, mins, grid, group)
    return QLinear.from_codes(codes, scale, scheme.fmt, group, mins=mins).to(lin.weight.device)


@register_method("awq")
def quantize_awq(
    model: nn.Module, targets: dict[str, nn.Linear], scheme: IntScheme, calib, progress: bool
) -> dict[str, QLinear]:  # noqa: ANN001 - calib: Calibration
    """AWQ every decoder block in turn on inputs from the already-quantized blocks."""

    def block_step(block, lins, stats):  # noqa: ANN001, ANN202 - see BlockQuantizer
        if block is None:  # lm_head: the clipping search only
            return {"lm_head": _clipped_qlinear("lm_head", lins["lm_head"], stats["lm_head"].xtx, scheme)}
        # the searches are [N, K] x [K, K] products: they use every thread (unlike GPTQ's column loop)
        out: dict[str, QLinear] = {}
        awq_scale_block(block, lins, stats, scheme, model.config)
        for name, lin in lins.items():
            q = _clipped_qlinear(name, lin, stats[name].xtx, scheme)
            set_module(model, name, q)
            out[name] = q
        return out

    return quantize_blockwise(model, targets, calib.tokens, f"AWQ {scheme.name}", True, block_step, progress)
