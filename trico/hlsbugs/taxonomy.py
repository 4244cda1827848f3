"""The Chrysalis bug taxonomy: 18 HLS bug types, functional (visible to C-simulation) or pragma."""

from __future__ import annotations

from dataclasses import dataclass

from trico.errors import TricoError


@dataclass(frozen=True)
class BugType:
    """One bug type of the taxonomy."""

    code: str
    category: str  # "functional" or "pragma"
    title: str


_TYPES = [
    BugType("OOB", "functional", "out-of-bounds array access"),
    BugType("USE", "functional", "unintended sign extension"),
    BugType("ZERO", "functional", "zero instead of a non-zero initializer"),
    BugType("MLU", "functional", "manual loop-unroll error"),
    BugType("INIT", "functional", "read of an uninitialized variable"),
    BugType("INF", "functional", "infinite loop"),
    BugType("BUF", "functional", "copies the wrong half of a split buffer"),
    BugType("SHFT", "functional", "shift amount out of range"),
    BugType("MLP", "pragma", "pipelining at several loop levels"),
    BugType("ILNU", "pragma", "inner loop not fully unrolled under a pipelined loop"),
    BugType("DFP", "pragma", "misplaced DATAFLOW"),
    BugType("FND", "pragma", "array_partition factor does not divide the dimension"),
    BugType("SMA", "pragma", "scalar mapped to an array interface"),
    BugType("AMS", "pragma", "array mapped to a scalar interface"),
    BugType("DID", "pragma", "wrong array_partition dim"),
    BugType("IDAP", "pragma", "interface access pattern the port does not have"),
    BugType("RAMB", "pragma", "random m_axi access that defeats bursts"),
    BugType("APT", "pragma", "wrong array_partition type"),
]

BUG_TYPES: dict[str, BugType] = {t.code: t for t in _TYPES}
FUNCTIONAL = [t.code for t in _TYPES if t.category == "functional"]
PRAGMA = [t.code for t in _TYPES if t.category == "pragma"]


def bug_type(code: str) -> BugType:
    """Look a bug type up by its code; an unknown code is a TricoError."""
    try:
        return BUG_TYPES[code.upper()]
    except KeyError:
        raise TricoError(f"unknown bug type {code!r}; known: {', '.join(BUG_TYPES)}") from None
