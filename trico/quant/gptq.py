"""GPTQ (Frantar et al., 2023): quantize a weight column by column, spreading each column's rounding error
over the not-yet-quantized columns through the inverse Hessian H = X^T X of the layer's inputs.

Damping (a fraction of mean diag(H) added to the diagonal), lazy block updates, and optional act-order
(columns by decreasing diag(H)). With act-order the group scales are fixed up front from the original
weights ("static groups"), so groups stay contiguous runs along K as the packed format requires.
"""

from __future__ import annotations

import torch
from torch import nn

from trico.errors import TricoError
from trico.quant.api import register_method, set_module
from trico.quant.grid import Grid, fit_scales
from trico.quant.layerwise import attention_mass, quantize_blockwise, shared_groups, single_thread
from trico.quant.qlinear import QLinear
from trico.quant.schemes import IntScheme

ATTN_INPUTS = ("q_proj", "k_proj", "v_proj")
"""Linears reading the attention input, whose Hessian the -am option weights by attention mass."""


def _inverse_hessian_factor(h: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor of (H + damp * mean(diag) I)^-1, raising the damping until H is positive definite."""
    mean_diag = torch.diag(h).mean()
    eye = torch.eye(h.shape[0], dtype=h.dtype)
    for attempt in range(6):
        l, info = torch.linalg.cholesky_ex(h + (damp * 10**attempt) * mean_diag * eye)
        if info == 0:
            hinv = torch.cholesky_inverse(l)
            u, info = torch.linalg.cholesky_ex(hinv, upper=True)
            if info == 0:
                return u
    raise TricoError("GPTQ: the calibration Hessian is not positive definite even with heavy damping")


def gptq_quantize(
    w: torch.Tensor,
    h: torch.Tensor,
    grid: Grid,
    group: int,
    act_order: bool = False,
    damp: float = 0.01,
    block: int = 128,
    clip: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """GPTQ one weight [N, K] given H [K, K]; returns codes [N, K] and fp16 scales (and mins) [N, K/group].

    clip [N, K/group] shrinks each group's range before its scale is fitted (AWQ's clipping search).
    """
    n, k = w.shape
    w = w.detach().clone().float()
    h = h.detach().clone().float()
    dead = torch.diag(h) == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    static = act_order or group == k
    scale = torch.zeros(n, k // group, dtype=torch.float16)
    mins = None if grid.symmetric else torch.zeros_like(scale)
    if static:
        scale, mins = fit_scales(w, grid, group, clip)
    perm = torch.argsort(torch.diag(h), descending=True) if act_order else torch.arange(k)
    w, h = w[:, perm], h[perm][:, perm]
    u = _inverse_hessian_factor(h, damp)
    block = max(group, group * (block // group)) if group < k else block
    codes = torch.zeros(n, k, dtype=torch.int8 if grid.signed8 else torch.uint8)
    _column_loop(w, u, codes, scale, mins, perm, grid, group, static, block, clip)
    return codes[:, torch.argsort(perm)], scale, mins


def _column_loop(
    w, u, codes, scale, mins, perm, grid: Grid, group: int, static: bool, block: int, clip
) -> None:  # noqa: ANN001
    """The GPTQ sweep over columns (in place on w, codes, scale, mins).

    Per column the grid arithmetic is inlined (same formulas as grid.quantize_codes / dequantize_codes):
    this loop runs once per input feature and dominates GPTQ's time.
    """
    n, k = w.shape
    off = grid.offset if grid.symmetric and not grid.signed8 else 0
    lo, hi = (-127, 127) if grid.signed8 else (0, grid.qmax)
    gidx = (perm // group).tolist()
    cur = -1
    s = inv = m = None
    for i1 in range(0, k, block):
        i2 = min(i1 + block, k)
        w1 = w[:, i1:i2].clone()
        err = torch.zeros_like(w1)
        u1 = u[i1:i2, i1:i2]
        for i in range(i2 - i1):
            col = i1 + i
            g = gidx[col]
            fresh = not static and col % group == 0
            if fresh:  # groups never straddle blocks: block is a multiple of group
                sg, mg = fit_scales(
                    w1[:, i : i + group], grid, group, None if clip is None else clip[:, g : g + 1]
                )
                scale[:, g] = sg[:, 0]
                if mins is not None:
                    mins[:, g] = mg[:, 0]
            if fresh or g != cur:
                s = scale[:, g].to(w.dtype)
                inv = torch.where(s == 0, torch.zeros_like(s), 1.0 / s)
                m = mins[:, g].to(w.dtype) if mins is not None else None
                cur = g
            wc = w1[:, i]
            if m is None:
                c = torch.round(wc * inv).add_(off).clamp_(lo, hi)
                q = (c - off) * s
            else:
                c = torch.round((wc - m) * inv).clamp_(lo, hi)
                q = c * s + m
            codes[:, col] = c.to(codes.dtype)
            e = (wc - q) / u1[i, i]
            w1[:, i:].addr_(e, u1[i, i:], alpha=-1.0)
            err[:, i] = e
        w[:, i2:].addmm_(err, u[i1:i2, i2:], alpha=-1.0)


def _gptq_layers(
    model: nn.Module,
    lins: dict[str, nn.Linear],
    h: torch.Tensor,
    scheme: IntScheme,
) -> dict[str, QLinear]:
    """GPTQ several linears that share one Hessian as a single matrix with stacked rows; swap them in."""
    names = list(lins)
    k = lins[names[0]].in_features
    group = scheme.layer_group(k)
    w = torch.cat([lins[n].weight.detach().float().cpu() for n in names])
    grid = Grid(scheme.bits, scheme.symmetric)
    clip = None
    if scheme.awq_scale:  # AWQ's clipping ranges for the group scales too
        from trico.quant.awq import NO_CLIP, search_clip

        clip = search_clip(w, h.float(), grid, group)
        r = 0
        for n in names:  # q/k keep their full range, as in AWQ
            rows = lins[n].out_features
            if n.rsplit(".", 1)[-1] in NO_CLIP:
                clip[r : r + rows] = 1.0
            r += rows
    with single_thread():
        codes, scale, mins = gptq_quantize(w, h, grid, group, scheme.act_order, scheme.damp, clip=clip)
    out, r = {}, 0
    for n in names:
        rows = lins[n].out_features
        q = QLinear.from_codes(
            codes[r : r + rows],
            scale[r : r + rows],
            scheme.fmt,
            group,
            mins=None if mins is None else mins[r : r + rows],
        ).to(lins[n].weight.device)
        set_module(model, n, q)
        out[n] = q
        r += rows
    return out


@register_method("gptq")
def quantize_gptq(
    model: nn.Module, targets: dict[str, nn.Linear], scheme: IntScheme, calib, progress: bool
) -> dict[str, QLinear]:  # noqa: ANN001 - calib: Calibration
    """GPTQ every decoder block in turn, feeding each block the outputs of the quantized ones before it."""

    def block_step(block, lins, stats):  # noqa: ANN001, ANN202 - see BlockQuantizer
        if scheme.awq_scale and block is not None:
            from trico.quant.awq import awq_scale_block  # here: awq and gptq both load from api at import

            # AWQ's scales move salient input channels onto finer grid steps; GPTQ then compensates the
            # rounding of the scaled weights (the statistics are rescaled to the new inputs x / s).
            awq_scale_block(block, lins, stats, scheme, model.config)
        out: dict[str, QLinear] = {}
        for names in shared_groups(list(lins), stats):
            out.update(_gptq_layers(model, {n: lins[n] for n in names}, stats[names[0]].xtx, scheme))
        return out

    def token_weights(block, x, lins):  # noqa: ANN001, ANN202 - see layerwise.TokenWeights
        # Every later query reads a token's key and value, weighted by its attention: through v the
        # attention output's squared error is at most sum_j mass_j ||dW x_j||^2 (Jensen, the weights of a
        # query summing to 1), so the mass-weighted x^T x bounds it. Unweighted, the attention sink (one
        # token in 512 that receives a third or more of all attention) hardly counts, and GPTQ's error
        # compensation lands on its key and value.
        mass = attention_mass(block, x)
        return {n: mass for n in lins if n.rsplit(".", 1)[-1] in ATTN_INPUTS}

    label = f"GPTQ {scheme.name}"
    weights = token_weights if scheme.attn_mass else None
    return quantize_blockwise(model, targets, calib.tokens, label, True, block_step, progress, weights)
