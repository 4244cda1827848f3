"""Round-to-nearest weight quantization: fit per-group fp16 scales, round, pack. No calibration."""

from __future__ import annotations

import torch
from torch import nn

from trico.quant.api import register_method
from trico.quant.grid import Grid, fit_scales, quantize_codes
from trico.quant.qlinear import QLinear
from trico.quant.schemes import IntScheme


def int_qlinear(w: torch.Tensor, scheme: IntScheme, group: int) -> QLinear:
    """RTN-quantize one weight [N, K] with the scheme's grid and the layer's group size into a QLinear."""
    grid = Grid(scheme.bits, scheme.symmetric)
    scale, mins = fit_scales(w, grid, group)
    codes = quantize_codes(w, scale, mins, grid, group)
    return QLinear.from_codes(codes, scale, scheme.fmt, group, mins=mins)


def _progress(items, progress: bool, desc: str):  # noqa: ANN001, ANN202 - any iterable
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="layer", leave=False)


@register_method("rtn")
def quantize_rtn(
    model: nn.Module, targets: dict[str, nn.Linear], scheme: IntScheme, calib: object, progress: bool
) -> dict[str, QLinear]:
    """RTN every target layer independently."""
    out = {}
    for name, lin in _progress(list(targets.items()), progress, f"RTN {scheme.name}"):
        w = lin.weight.detach().float()
        out[name] = int_qlinear(w, scheme, scheme.layer_group(lin.in_features)).to(w.device)
    return out
