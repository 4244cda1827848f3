"""Ternary weights in the BitNet b1.58 manner: W ~ s * t, t in {-1, 0, 1}, s = mean|W| (absmean) per group,
per output channel or per tensor. Post-training only (no retraining), so expect heavy damage."""

from __future__ import annotations

import torch
from torch import nn

from trico.quant.api import register_method
from trico.quant.qlinear import QLinear
from trico.quant.schemes import TernaryScheme


def absmean_ternary(w: torch.Tensor, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes u = t + 1 uint8 [N, K], fp16 scales) with group > 0, K (per channel) or 0 (per tensor)."""
    n, k = w.shape
    w = w.float()
    if group == 0:
        scale = w.abs().mean().reshape(1, 1).half()
        s = scale.float()
    else:
        scale = w.abs().reshape(n, k // group, group).mean(-1).half()
        s = scale.float().repeat_interleave(group, dim=1)
    inv = torch.where(s == 0, torch.zeros_like(s), 1.0 / s)
    t = torch.round(w * inv).clamp_(-1, 1)
    return (t + 1).to(torch.uint8), scale


@register_method("ternary")
def quantize_ternary(
    model: nn.Module, targets: dict[str, nn.Linear], scheme: TernaryScheme, calib: object, progress: bool
) -> dict[str, QLinear]:
    """Absmean-ternarize every target layer independently (no calibration)."""
    out = {}
    items = list(targets.items())
    if progress:
        from tqdm import tqdm

        items = tqdm(items, desc=f"ternary {scheme.name}", unit="layer", leave=False)
    for name, lin in items:
        group = scheme.layer_group(lin.in_features)
        codes, scale = absmean_ternary(lin.weight.detach().cpu(), group)
        out[name] = QLinear.from_codes(codes, scale, scheme.fmt, group).to(lin.weight.device)
    return out
