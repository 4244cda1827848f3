"""Quantization grids shared by every method: fit fp16 scales (and mins) to a group, round to codes.

Symmetric k-bit codes use the full range u in 0..2^k - 1 around 2^(k-1): the scale takes the sign of
the group's largest-magnitude weight so that weight lands exactly on code 0 (as llama.cpp's Q4_0
does), which gives one more level than absmax / (2^(k-1) - 1). Symmetric 8-bit is plain int8
(q in -127..127, s = absmax / 127). Asymmetric codes span [min, max] of the group (like Q4_1).
Scales are rounded to fp16 before the codes are computed, so dequantization is exact to what is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Grid:
    """An integer grid: bits, symmetric or not, and whether codes are signed int8 (fmt 'int8')."""

    bits: int
    symmetric: bool = True

    @property
    def signed8(self) -> bool:
        """Symmetric 8-bit uses signed int8 codes (the 'int8' format)."""
        return self.bits == 8 and self.symmetric

    @property
    def qmax(self) -> int:
        """Largest unsigned code."""
        return (1 << self.bits) - 1

    @property
    def offset(self) -> int:
        """What a symmetric code has subtracted before scaling (2^(bits-1))."""
        return 1 << (self.bits - 1)


def _groups(w: torch.Tensor, group: int) -> torch.Tensor:
    n, k = w.shape
    return w.reshape(n, k // group, group)


def fit_scales(
    w: torch.Tensor, grid: Grid, group: int, clip: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """fp16 scales [N, K/group] (and mins, when asymmetric) for weights w [N, K].

    clip [N, K/group] in (0, 1] shrinks each group's range before fitting (AWQ's clipping search).
    """
    wg = _groups(w.float(), group)
    if clip is not None:
        c = clip.float().unsqueeze(-1)
        wg = wg * c  # scaling the group shrinks its extremes (and min/max) by the same ratio
    if grid.signed8:
        scale = wg.abs().amax(-1) / 127.0
        return scale.half(), None
    if grid.symmetric:
        idx = wg.abs().argmax(-1, keepdim=True)
        extreme = wg.gather(-1, idx).squeeze(-1)
        return (extreme / -grid.offset).half(), None
    lo, hi = wg.amin(-1), wg.amax(-1)
    scale = (hi - lo) / grid.qmax
    return scale.half(), lo.half()


def quantize_codes(
    w: torch.Tensor, scale: torch.Tensor, mins: torch.Tensor | None, grid: Grid, group: int
) -> torch.Tensor:
    """Codes of w [N, K] on the given per-group grid: int8 for signed 8-bit, uint8 otherwise."""
    wg = _groups(w.float(), group)
    s = scale.float().unsqueeze(-1)
    inv = torch.where(s == 0, torch.zeros_like(s), 1.0 / s)
    if grid.signed8:
        q = torch.round(wg * inv).clamp_(-127, 127)
        return q.reshape(w.shape).to(torch.int8)
    if grid.symmetric:
        u = torch.round(wg * inv).add_(grid.offset).clamp_(0, grid.qmax)
    else:
        u = torch.round((wg - mins.float().unsqueeze(-1)) * inv).clamp_(0, grid.qmax)
    return u.reshape(w.shape).to(torch.uint8)


def dequantize_codes(
    codes: torch.Tensor, scale: torch.Tensor, mins: torch.Tensor | None, grid: Grid, group: int
) -> torch.Tensor:
    """fp32 weights of codes [N, K] (the same formula as QLinear.dequantize)."""
    c = _groups(codes.float(), group)
    if grid.symmetric and not grid.signed8:
        c = c - grid.offset
    w = c * scale.float().unsqueeze(-1)
    if mins is not None:
        w = w + mins.float().unsqueeze(-1)
    return w.reshape(codes.shape)


def fake_quantize(w: torch.Tensor, grid: Grid, group: int) -> torch.Tensor:
    """Round-to-nearest quantize then dequantize (fp32), for searches that only need the error."""
    scale, mins = fit_scales(w, grid, group)
    return dequantize_codes(quantize_codes(w, scale, mins, grid, group), scale, mins, grid, group)
