"""Bug injectors: one per bug type, each listing every site where its bug can be planted in a kernel.

An injector is a function `Design -> list[Mutation]` registered under its bug type. A mutation is a
set of text edits on the parse tree's byte ranges; `apply` plants one or more non-overlapping
mutations and reports, for each, the original and faulty lines and where they sit in the new file.
Which sites are used is decided by the caller from a seed, so injection is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from trico.hlsbugs.cparse import Design
from trico.hlsbugs.taxonomy import bug_type


@dataclass(frozen=True)
class Edit:
    """Replace bytes [start, end) of the source with `text` (start == end inserts)."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Mutation:
    """One planted bug: its type, its edits, and the rule it breaks in words."""

    bug_type: str
    edits: tuple[Edit, ...]
    rule: str

    @property
    def site(self) -> str:
        """A stable id of where the bug goes (type + first edited byte)."""
        return f"{self.bug_type}@{min(e.start for e in self.edits)}"

    def overlaps(self, other: Mutation) -> bool:
        """Two mutations touch the same bytes (or insert at the same point)."""
        return any(
            a.start < b.end and b.start < a.end or a.start == b.start for a in self.edits for b in other.edits
        )


@dataclass(frozen=True)
class Planted:
    """Where a mutation landed in the faulty file."""

    mutation: Mutation
    line: int
    line_end: int
    original_code: str
    faulty_code: str


Injector = Callable[[Design], list[Mutation]]
INJECTORS: dict[str, Injector] = {}


def injector(code: str) -> Callable[[Injector], Injector]:
    """Register the injector of a bug type."""
    bug_type(code)

    def deco(fn: Injector) -> Injector:
        INJECTORS[code] = fn
        return fn

    return deco


def sites(design: Design, code: str) -> list[Mutation]:
    """Every site of one bug type in a design (the type is validated)."""
    code = bug_type(code).code
    return INJECTORS[code](design)


def _lines(src: str, start: int, end: int) -> tuple[int, int, str]:
    """1-based first/last line of a byte range and the full text of those lines."""
    data = src.encode()
    lo = data.rfind(b"\n", 0, start) + 1
    last = max(start, end - 1)
    hi = data.find(b"\n", last)
    hi = len(data) if hi < 0 else hi
    return data.count(b"\n", 0, start) + 1, data.count(b"\n", 0, last) + 1, data[lo:hi].decode()


def apply(source: str, mutations: list[Mutation]) -> tuple[str, list[Planted]]:
    """Plant mutations into `source`; raises ValueError when two of them overlap."""
    for i, m in enumerate(mutations):
        for other in mutations[i + 1 :]:
            if m.overlaps(other):
                raise ValueError(f"mutations {m.site} and {other.site} overlap")
    data = source.encode()
    edits = sorted(
        ((e, k) for k, m in enumerate(mutations) for e in m.edits), key=lambda ek: (ek[0].start, ek[0].end)
    )
    out, pos, shift = [], 0, 0
    new_pos: dict[tuple[int, Edit], tuple[int, int]] = {}
    for e, k in edits:
        out.append(data[pos : e.start])
        new_start = e.start + shift
        new_pos[(k, e)] = (new_start, new_start + len(e.text.encode()))
        out.append(e.text.encode())
        shift += len(e.text.encode()) - (e.end - e.start)
        pos = e.end
    out.append(data[pos:])
    faulty = b"".join(out).decode()
    planted = []
    for k, m in enumerate(mutations):
        # Line numbers follow the edits that add text; pure deletions point at where text went.
        focus = [e for e in m.edits if e.text] or list(m.edits)
        old_lo = min(e.start for e in focus)
        old_hi = max(e.end for e in focus)
        new_lo = min(new_pos[(k, e)][0] for e in focus)
        new_hi = max(new_pos[(k, e)][1] for e in focus)
        line, _, orig = _lines(source, old_lo, old_hi)
        line, line_end, bad = _lines(faulty, new_lo, new_hi)
        planted.append(Planted(m, line, line_end, orig, bad))
    return faulty, planted


# Registration happens on import.
from trico.hlsbugs.injectors import functional, pragma  # noqa: E402, F401
