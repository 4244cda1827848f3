"""The few efficiency factors that turn datasheet peaks into achievable rates (fitted by calibration.py)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType

from trico.errors import TricoError


@dataclass(frozen=True)
class Efficiency:
    """Achievable fractions of the roofline; the defaults are the plain (uncalibrated) roofline."""

    bw: float = 1.0
    """Fraction of datasheet memory bandwidth reached by large transfers, in (0, 1.5]."""
    bw_half_MB: float = 0.0
    """Transfer size (MB per kernel) at which half of that fraction is reached (>= 0; 0 = no size effect)."""
    flops: float = 1.0
    """Fraction of datasheet dense peak reached by large matmuls, in (0, 1.5]."""
    launch_us: float = 0.0
    """Fixed cost per kernel launch in microseconds (>= 0)."""
    gemv_ps: Mapping[str, float] = field(default_factory=dict)
    """Fused kernels on one activation row (GEMV): ALU time per weight, in picoseconds, by format (>= 0)."""
    mma_ps: Mapping[str, float] = field(default_factory=dict)
    """Fused kernels on 2..mma_rows rows (one tensor-core row tile): ALU time per weight, ps, by format."""
    row_ps: Mapping[str, float] = field(default_factory=dict)
    """Fused kernels: extra ALU time per weight per row beyond mma_rows, in picoseconds, by format (>= 0)."""
    prefill_dequant_ps: Mapping[str, float] = field(default_factory=dict)
    """Wide matmuls: time per weight of the separate dequantize-to-16-bit pass, in picoseconds (>= 0)."""
    mma_rows: int = 16
    """Rows of one tensor-core MMA tile: fewer rows are padded up to it (m16n8k16 MMA on Ampere/Hopper)."""
    fused_max_rows: int = 64
    """Rows up to which a linear runs as one fused kernel over the stored weights; above, the weights are
    dequantized and a dense matmul runs (trico's engine switches at trico.kernels.dispatch.DECODE_MAX_ROWS)."""
    source: str = "uncalibrated roofline: datasheet peaks, no overheads"
    """Where these numbers came from (fit inputs, date)."""

    def __post_init__(self) -> None:
        for name, low, high in (("bw", 0.0, 1.5), ("flops", 0.0, 1.5)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and low < value <= high):
                raise TricoError(f"efficiency {name} must be in ({low}, {high}], got {value!r}")
        for name in ("bw_half_MB", "launch_us"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise TricoError(f"efficiency {name} must be >= 0, got {value!r}")
        for name in _FORMAT_MAPS:
            for fmt, value in getattr(self, name).items():
                if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                    raise TricoError(f"efficiency {name}[{fmt!r}] must be >= 0, got {value!r}")
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        for name in ("mma_rows", "fused_max_rows"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise TricoError(f"efficiency {name} must be an integer >= 1, got {getattr(self, name)!r}")

    @property
    def calibrated(self) -> bool:
        """True when anything differs from the plain roofline."""
        return (self.bw, self.bw_half_MB, self.flops, self.launch_us) != (1.0, 0.0, 1.0, 0.0) or any(
            any(getattr(self, name).values()) for name in _FORMAT_MAPS
        )

    def bandwidth_fraction(self, transfer_bytes: float) -> float:
        """Achieved fraction of datasheet bandwidth for one kernel moving `transfer_bytes`."""
        if self.bw_half_MB <= 0:
            return self.bw
        return self.bw * transfer_bytes / (transfer_bytes + self.bw_half_MB * 1e6)

    def kernel_seconds(self, fmt: str | None, elems: float, rows: int) -> tuple[float, bool]:
        """Format-specific ALU time of one linear over `elems` weights and `rows` rows, and whether it is
        a separate pass (dequantize then dense matmul) rather than overlapped with the memory stream."""
        if not fmt or not elems:
            return 0.0, False
        if rows > self.fused_max_rows:
            return elems * _lookup(self.prefill_dequant_ps, fmt) * 1e-12, True
        if rows <= 1:
            per_weight = _lookup(self.gemv_ps, fmt)
        else:
            extra = max(0, rows - self.mma_rows)
            per_weight = _lookup(self.mma_ps, fmt) + _lookup(self.row_ps, fmt) * extra
        return elems * per_weight * 1e-12, False

    def to_dict(self) -> dict:
        """JSON-friendly dict (from_dict reads it back)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in _FORMAT_MAPS:
            d[name] = dict(d[name])
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Efficiency:
        """Inverse of to_dict."""
        known = {f.name: d[f.name] for f in fields(cls) if f.name in d}
        return cls(**known)


_FORMAT_MAPS = ("gemv_ps", "mma_ps", "row_ps", "prefill_dequant_ps")


def _lookup(table: Mapping[str, float], fmt: str) -> float:
    """A format's fitted cost; an unfitted format borrows the fitted one nearest in bit width."""
    if not table:
        return 0.0
    if fmt in table:
        return table[fmt]
    return table[min(table, key=lambda f: abs(_fmt_bits(f) - _fmt_bits(fmt)))]


def _fmt_bits(fmt: str) -> float:
    """Bit width named in a format ('uint4' -> 4, 'tern1.6' -> 1.6, 'w8a8' -> 8, 'bf16' -> 16)."""
    match = re.search(r"\d+(?:\.\d+)?", fmt)
    return float(match.group()) if match else 16.0


CALIBRATION_DIR = Path(__file__).resolve().parent / "fitted"
"""Fitted efficiency files, one per device: <hardware-name>.json, written by `trico calibrate`."""


def load_efficiency(hardware_name: str, directory: Path | None = None) -> Efficiency | None:
    """The stored fit for a device (its base name, without a what-if variant), or None if there is none."""
    base = hardware_name.split(":", 1)[0]
    path = (directory or CALIBRATION_DIR) / f"{base}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise TricoError(f"{path}: corrupt calibration file ({exc})") from exc
    return Efficiency.from_dict(data.get("efficiency", data))
