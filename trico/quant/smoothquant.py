"""SmoothQuant W8A8 (Xiao et al., 2023): migrate activation outliers into the weights, then int8 both.

Per input channel c, s_c = max|x_c|^alpha / max|W_c|^(1 - alpha) (one s for the linears sharing an input,
so a kernel may fold 1/s into the preceding RMSNorm). Weights W * s are int8 per output channel;
activations x / s are int8 per token at run time (QLinear 'w8a8'). alpha = 0 is naive W8A8: s = 1.
Statistics come from the float model, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from trico.quant.api import register_method
from trico.quant.grid import Grid, fit_scales, quantize_codes
from trico.quant.layerwise import quantize_blockwise, shared_groups
from trico.quant.qlinear import QLinear
from trico.quant.schemes import SmoothQuantScheme


def smoothing_vector(x_abs_max: torch.Tensor, w: torch.Tensor, alpha: float) -> torch.Tensor:
    """fp16 s [K] = max|x|^alpha / max|W|^(1-alpha) over input channels (ones when alpha = 0)."""
    if alpha == 0:
        return torch.ones(w.shape[1], dtype=torch.float16)
    w_max = w.abs().amax(0).clamp_min(1e-5)
    s = x_abs_max.clamp_min(1e-5).pow(alpha) / w_max.pow(1 - alpha)
    return s.clamp(1e-4, 1e4).half()


def w8a8_qlinear(w: torch.Tensor, smooth: torch.Tensor) -> QLinear:
    """int8 per-output-channel QLinear of W * smooth, with the smoothing vector stored beside it."""
    ws = w.float() * smooth.float()[None, :]
    grid = Grid(8, True)
    scale, _ = fit_scales(ws, grid, ws.shape[1])
    codes = quantize_codes(ws, scale, None, grid, ws.shape[1])
    return QLinear.from_codes(codes, scale, "w8a8", ws.shape[1], smooth=smooth)


def _quantize_group(lins: dict[str, nn.Linear], stats, alpha: float) -> dict[str, QLinear]:  # noqa: ANN001
    names = list(lins)
    w = torch.cat([lins[n].weight.detach().float().cpu() for n in names])
    s = smoothing_vector(stats.abs_max, w, alpha)
    return {
        n: w8a8_qlinear(lins[n].weight.detach().float().cpu(), s).to(lins[n].weight.device) for n in names
    }


@register_method("smoothquant")
def quantize_smoothquant(
    model: nn.Module, targets: dict[str, nn.Linear], scheme: SmoothQuantScheme, calib, progress: bool
) -> dict[str, QLinear]:  # noqa: ANN001 - calib: Calibration
    """Collect max|x| per channel on the float model block by block and build W8A8 layers."""

    def block_step(block, lins, stats):  # noqa: ANN001, ANN202 - see BlockQuantizer
        # Layers are not swapped here, so the next block sees the float model's activations.
        out: dict[str, QLinear] = {}
        for names in shared_groups(list(lins), stats):
            out.update(_quantize_group({n: lins[n] for n in names}, stats[names[0]], scheme.alpha))
        return out

    label = f"SmoothQuant {scheme.name}"
    return quantize_blockwise(model, targets, calib.tokens, label, False, block_step, progress)
