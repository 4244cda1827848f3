"""Bit-exact packing of integer weight codes along K (the shared weight-format contract).

A weight is [N, K] row-major; codes are unsigned integers packed along K:
- 2/4/8 bits: `8 // bits` codes per byte, code k at bits (k mod per_byte) * bits of byte k // per_byte;
- 3 bits: each run of 8 codes is one 24-bit little-endian integer stored as 3 bytes (K % 8 == 0);
- base 3 ("tern1.6"): each run of 5 trits (codes 0..2) is one byte sum_i u_i * 3^i; rows padded
  at their end with code 1 (t = 0) up to a multiple of 5.
Every function works on uint8 tensors on any device and round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from trico.errors import TricoError

_POW3 = (1, 3, 9, 27, 81)


def _check_codes(codes: torch.Tensor, max_code: int) -> torch.Tensor:
    if codes.dim() != 2:
        raise TricoError(f"codes must be 2-D [N, K], got shape {tuple(codes.shape)}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) > max_code):
        raise TricoError(f"codes out of range 0..{max_code}")
    return codes.to(torch.uint8)


def pack_dense(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack codes [N, K] of 2, 4 or 8 bits into uint8 [N, K * bits / 8] (little end first)."""
    if bits not in (2, 4, 8):
        raise TricoError(f"pack_dense handles 2, 4 or 8 bits, not {bits}")
    codes = _check_codes(codes, (1 << bits) - 1)
    per_byte = 8 // bits
    n, k = codes.shape
    if k % per_byte:
        raise TricoError(f"K={k} must be a multiple of {per_byte} to pack {bits}-bit codes")
    c = codes.view(n, k // per_byte, per_byte).to(torch.int32)
    shifts = torch.arange(per_byte, device=codes.device, dtype=torch.int32) * bits
    return (c << shifts).sum(-1).to(torch.uint8)


def unpack_dense(packed: torch.Tensor, bits: int, k: int) -> torch.Tensor:
    """Inverse of pack_dense: uint8 [N, K * bits / 8] -> codes uint8 [N, K]."""
    per_byte = 8 // bits
    n = packed.shape[0]
    if packed.shape[1] * per_byte != k:
        raise TricoError(f"packed width {packed.shape[1]} does not hold K={k} {bits}-bit codes")
    shifts = torch.arange(per_byte, device=packed.device, dtype=torch.int32) * bits
    c = (packed.to(torch.int32)[:, :, None] >> shifts) & ((1 << bits) - 1)
    return c.reshape(n, k).to(torch.uint8)


def pack_3bit(codes: torch.Tensor) -> torch.Tensor:
    """Pack 3-bit codes [N, K] (K % 8 == 0) into uint8 [N, 3K/8]: 8 codes -> 24-bit LE integer."""
    codes = _check_codes(codes, 7)
    n, k = codes.shape
    if k % 8:
        raise TricoError(f"3-bit packing needs K divisible by 8, got K={k}")
    c = codes.view(n, k // 8, 8).to(torch.int32)
    shifts = torch.arange(8, device=codes.device, dtype=torch.int32) * 3
    v = (c << shifts).sum(-1)  # [N, K/8] 24-bit values
    out = torch.stack([v & 255, (v >> 8) & 255, v >> 16], dim=-1)
    return out.reshape(n, 3 * k // 8).to(torch.uint8)


def unpack_3bit(packed: torch.Tensor, k: int) -> torch.Tensor:
    """Inverse of pack_3bit: uint8 [N, 3K/8] -> codes uint8 [N, K]."""
    n = packed.shape[0]
    if k % 8 or packed.shape[1] != 3 * k // 8:
        raise TricoError(f"packed width {packed.shape[1]} does not hold K={k} 3-bit codes")
    b = packed.to(torch.int32).view(n, k // 8, 3)
    v = b[..., 0] | (b[..., 1] << 8) | (b[..., 2] << 16)
    shifts = torch.arange(8, device=packed.device, dtype=torch.int32) * 3
    return ((v[..., None] >> shifts) & 7).reshape(n, k).to(torch.uint8)


def pack_base3(codes: torch.Tensor) -> torch.Tensor:
    """Pack trit codes u = t + 1 in 0..2, [N, K], into uint8 [N, ceil(K/5)] (5 trits per byte)."""
    codes = _check_codes(codes, 2)
    n, k = codes.shape
    pad = (-k) % 5
    if pad:  # code 1 is t = 0, the padding the contract prescribes
        codes = torch.cat([codes, torch.ones(n, pad, dtype=torch.uint8, device=codes.device)], dim=1)
    c = codes.view(n, -1, 5).to(torch.int32)
    p3 = torch.tensor(_POW3, dtype=torch.int32, device=codes.device)
    return (c * p3).sum(-1).to(torch.uint8)


def unpack_base3(packed: torch.Tensor, k: int) -> torch.Tensor:
    """Inverse of pack_base3: uint8 [N, ceil(K/5)] -> trit codes uint8 [N, K] (padding dropped)."""
    n = packed.shape[0]
    if packed.shape[1] != -(-k // 5):
        raise TricoError(f"packed width {packed.shape[1]} does not hold K={k} base-3 trits")
    p3 = torch.tensor(_POW3, dtype=torch.int32, device=packed.device)
    c = (packed.to(torch.int32)[:, :, None] // p3) % 3
    return c.reshape(n, -1)[:, :k].to(torch.uint8)


@dataclass(frozen=True)
class Layout:
    """How one QLinear format stores its codes: pack/unpack functions and bytes per row."""

    fmt: str
    code_bits: int
    """Bits of one unsigned code before packing (2 for ternary codes u = t + 1)."""
    pack: Callable[[torch.Tensor], torch.Tensor]
    unpack: Callable[[torch.Tensor, int], torch.Tensor]
    row_bytes: Callable[[int], int]
    """Packed bytes of one row of K codes."""
    k_multiple: int
    """K must be a multiple of this."""


def _dense(bits: int) -> tuple[Callable, Callable]:
    return (lambda c: pack_dense(c, bits)), (lambda p, k: unpack_dense(p, bits, k))


LAYOUTS: dict[str, Layout] = {
    "uint2": Layout("uint2", 2, *_dense(2), lambda k: k // 4, 4),
    "uint3": Layout("uint3", 3, pack_3bit, unpack_3bit, lambda k: 3 * k // 8, 8),
    "uint4": Layout("uint4", 4, *_dense(4), lambda k: k // 2, 2),
    "uint8": Layout("uint8", 8, *_dense(8), lambda k: k, 1),
    "tern2": Layout("tern2", 2, *_dense(2), lambda k: k // 4, 4),
    "tern1.6": Layout("tern1.6", 2, pack_base3, unpack_base3, lambda k: -(-k // 5), 1),
}
"""Packed layouts by QLinear format; `int8` and `w8a8` store signed int8 codes unpacked."""


def layout(fmt: str) -> Layout:
    """The packing layout of a packed format (uint2/3/4/8, tern2, tern1.6)."""
    try:
        return LAYOUTS[fmt]
    except KeyError:
        raise TricoError(f"no packed layout {fmt!r}; known: {', '.join(LAYOUTS)}") from None
