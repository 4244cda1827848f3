"""FPGA parts: published resource counts and memory bandwidth, read from data/parts.json."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from trico.errors import TricoError

PARTS_FILE = Path(__file__).parent / "data" / "parts.json"


@dataclass(frozen=True)
class Part:
    """One FPGA part (or board) the estimator and DSE target."""

    key: str
    name: str
    dsp: int
    lut: int
    ff: int
    bram36: int
    """36Kb block RAMs (each is two 18Kb halves)."""
    uram: int
    memory: str
    mem_bw_gbs: float
    """Peak external-memory bandwidth, GB/s."""
    clock_mhz: float
    """Assumed kernel clock (a planning figure, not a vendor number)."""
    usable: float
    """Fraction of each resource assumed left for the kernel after the platform shell."""
    source: str

    @property
    def bram18(self) -> int:
        """18Kb block RAM halves."""
        return 2 * self.bram36

    def budget(self, fraction: float | None = None) -> dict[str, float]:
        """Resources a design may use: each count times the usable fraction (or the given one)."""
        f = self.usable if fraction is None else fraction
        return {"dsp": self.dsp * f, "lut": self.lut * f, "ff": self.ff * f, "bram18": self.bram18 * f}


@lru_cache(maxsize=1)
def load_parts() -> dict[str, Part]:
    """Every part in the data file, by key."""
    raw = json.loads(PARTS_FILE.read_text())
    return {k: Part(key=k, **v) for k, v in raw.items() if not k.startswith("_")}


def get_part(name: str) -> Part:
    """Look a part up by key (case-insensitive); unknown names list the known ones."""
    parts = load_parts()
    key = name.lower().replace("-", "").replace("_", "").replace("alveo", "").strip()
    if key in parts:
        return parts[key]
    close = difflib.get_close_matches(key, parts, n=2)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise TricoError(f"unknown FPGA part {name!r}{hint}; known: {', '.join(parts)}")
