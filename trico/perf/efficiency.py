"""The few efficiency factors that turn datasheet peaks into achievable rates (fitted by calibration.py)."""

from __future__ import annotations

import json
import math
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
    dequant_ps: Mapping[str, float] = field(default_factory=dict)
    """Extra ALU time per packed weight element, in picoseconds, by kernel format (>= 0)."""
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
        for fmt, value in self.dequant_ps.items():
            if not (math.isfinite(value) and value >= 0):
                raise TricoError(f"efficiency dequant_ps[{fmt!r}] must be >= 0, got {value!r}")
        object.__setattr__(self, "dequant_ps", MappingProxyType(dict(self.dequant_ps)))

    @property
    def calibrated(self) -> bool:
        """True when anything differs from the plain roofline."""
        return (self.bw, self.bw_half_MB, self.flops, self.launch_us) != (1.0, 0.0, 1.0, 0.0) or any(
            self.dequant_ps.values()
        )

    def bandwidth_fraction(self, transfer_bytes: float) -> float:
        """Achieved fraction of datasheet bandwidth for one kernel moving `transfer_bytes`."""
        if self.bw_half_MB <= 0:
            return self.bw
        return self.bw * transfer_bytes / (transfer_bytes + self.bw_half_MB * 1e6)

    def dequant_seconds(self, fmt: str | None, elems: float) -> float:
        """Dequantization time for `elems` packed weights of `fmt` (nearest fitted format by bit width)."""
        if not fmt or not elems or not self.dequant_ps:
            return 0.0
        ps = self.dequant_ps.get(fmt)
        if ps is None:
            ps = self.dequant_ps[min(self.dequant_ps, key=lambda f: abs(_fmt_bits(f) - _fmt_bits(fmt)))]
        return elems * ps * 1e-12

    def to_dict(self) -> dict:
        """JSON-friendly dict (from_dict reads it back)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["dequant_ps"] = dict(self.dequant_ps)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> Efficiency:
        """Inverse of to_dict."""
        known = {
            k: d[k] for k in ("bw", "bw_half_MB", "flops", "launch_us", "dequant_ps", "source") if k in d
        }
        return cls(**known)


def _fmt_bits(fmt: str) -> float:
    digits = "".join(ch for ch in fmt if ch.isdigit() or ch == ".")
    try:
        return float(digits) if digits else 8.0
    except ValueError:
        return 8.0


CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
"""Fitted efficiency files, one per device: <hardware-name>.json, written by `trico plan --calibrate`."""


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
