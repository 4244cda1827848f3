"""Pragma lint: checks the rules of each HLS pragma type on a whole kernel file.

Every rule is registered under the bug type it detects; `lint(source)` runs them all. The lint never
looks at how a file was made, so it can score injected variants and hand-written code alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from trico.errors import TricoError
from trico.hlsbugs import rules
from trico.hlsbugs.cparse import Array, Design, build_design


@dataclass(frozen=True)
class Finding:
    """One rule violation."""

    bug_type: str
    line: int
    message: str

    def to_json(self) -> dict:
        """JSON form used by detectors and the CLI."""
        return {"type": self.bug_type, "line": self.line, "message": self.message}


Rule = Callable[[Design], list[Finding]]
RULES: dict[str, Rule] = {}


def rule(code: str) -> Callable[[Rule], Rule]:
    """Register a lint rule for a bug type."""

    def deco(fn: Rule) -> Rule:
        RULES[code] = fn
        return fn

    return deco


@rule("MLP")
def _mlp(d: Design) -> list[Finding]:
    out = []
    func_pipe = next(
        (p for p in d.pragmas if p.directive == "PIPELINE" and p.loop is None and d.in_top(p.node)), None
    )
    for lp in d.loops:
        if not rules.is_pipelined(lp):
            continue
        outer = rules.pipelined_ancestor(lp)
        if outer is not None:
            out.append(
                Finding(
                    "MLP",
                    lp.pragma("PIPELINE").line,
                    f"loop at line {lp.line} is pipelined inside pipelined loop at line {outer.line}",
                )
            )
            out.append(
                Finding(
                    "MLP",
                    outer.pragma("PIPELINE").line,
                    f"pipelined loop at line {outer.line} contains another pipelined loop",
                )
            )
        elif func_pipe is not None:
            out.append(
                Finding("MLP", lp.pragma("PIPELINE").line, "loop pipelined inside a pipelined function")
            )
    return out


@rule("ILNU")
def _ilnu(d: Design) -> list[Finding]:
    out = []
    for lp in d.loops:
        outer = rules.pipelined_ancestor(lp)
        if outer is None:
            continue
        factor = rules.unroll_factor(lp)
        where = lp.pragma("UNROLL").line if lp.pragma("UNROLL") else lp.line
        if lp.trip is None:
            out.append(
                Finding(
                    "ILNU",
                    lp.line,
                    f"loop under the pipeline at line {outer.line} has no constant trip count, so it cannot be fully unrolled",
                )
            )
        elif factor is not None and factor < lp.trip:
            out.append(
                Finding(
                    "ILNU",
                    where,
                    f"loop under the pipeline at line {outer.line} is unrolled {factor}x of {lp.trip}",
                )
            )
    return out


@rule("DFP")
def _dfp(d: Design) -> list[Finding]:
    out = []
    for p in d.pragmas:
        if p.directive != "DATAFLOW":
            continue
        in_pipe = p.loop is not None and (
            rules.is_pipelined(p.loop) or rules.pipelined_ancestor(p.loop) is not None
        )
        same_scope_pipe = any(q.directive == "PIPELINE" and q.scope == p.scope for q in d.pragmas)
        tasks = rules.scope_tasks(p.scope)
        if in_pipe or same_scope_pipe:
            out.append(Finding("DFP", p.line, "DATAFLOW inside a pipelined region"))
        elif tasks < 2:
            out.append(
                Finding(
                    "DFP",
                    p.line,
                    f"DATAFLOW region has {tasks} task(s); it needs at least two loops or calls",
                )
            )
    return out


def _partitions(d: Design):
    for p in d.pragmas:
        if p.directive == "ARRAY_PARTITION":
            yield p, rules.partition_target(d, p)


@rule("FND")
def _fnd(d: Design) -> list[Finding]:
    out = []
    for p, arr in _partitions(d):
        factor = rules.partition_factor(p)
        if arr is None or factor is None or rules.partition_type(p) == "complete":
            continue
        dim = rules.partition_dim(p)
        dims = range(1, len(arr.dims) + 1) if dim == 0 else [dim] if 0 < dim <= len(arr.dims) else []
        for k in dims:
            size = arr.dims[k - 1]
            if size and size % factor:
                out.append(
                    Finding(
                        "FND", p.line, f"factor {factor} does not divide dim {k} of {arr.name} (size {size})"
                    )
                )
    return out


@rule("DID")
def _did(d: Design) -> list[Finding]:
    out = []
    for p, arr in _partitions(d):
        dim = rules.partition_dim(p)
        if arr is not None and not 0 <= dim <= len(arr.dims):
            out.append(
                Finding(
                    "DID", p.line, f"{arr.name} has {len(arr.dims)} dimension(s); dim={dim} is out of range"
                )
            )
    return out


@rule("APT")
def _apt(d: Design) -> list[Finding]:
    out = []
    for p, arr in _partitions(d):
        kind, dim, factor = rules.partition_type(p), rules.partition_dim(p), rules.partition_factor(p)
        if arr is None or kind == "complete" or not 0 < dim <= len(arr.dims):
            continue
        need = rules.required_partition_types(d, arr, dim, factor or 0)
        if need and kind not in need:
            out.append(
                Finding(
                    "APT",
                    p.line,
                    f"parallel accesses of {arr.name} on dim {dim} need a {'/'.join(sorted(need))} partition, not {kind}",
                )
            )
    return out


def _interfaces(d: Design):
    for p in d.pragmas:
        if p.directive == "INTERFACE" and p.get("port") in d.ports:
            yield p, d.ports[p.get("port")]


@rule("SMA")
def _sma(d: Design) -> list[Finding]:
    return [
        Finding("SMA", p.line, f"scalar port {p.get('port')} mapped to memory interface {p.mode}")
        for p, info in _interfaces(d)
        if not isinstance(info, Array) and p.mode in rules.MEMORY_MODES
    ]


@rule("AMS")
def _ams(d: Design) -> list[Finding]:
    return [
        Finding("AMS", p.line, f"array port {p.get('port')} mapped to scalar interface {p.mode}")
        for p, info in _interfaces(d)
        if isinstance(info, Array) and p.mode in rules.SCALAR_MODES
    ]


@rule("IDAP")
def _idap(d: Design) -> list[Finding]:
    return [
        Finding(
            "IDAP", p.line, f"{p.mode} port {p.get('port')} is not accessed once, in order, in one direction"
        )
        for p, info in _interfaces(d)
        if isinstance(info, Array)
        and p.mode in rules.STREAM_MODES
        and not rules.is_sequential_once(d, p.get("port"))
    ]


@rule("RAMB")
def _ramb(d: Design) -> list[Finding]:
    out = []
    for p, info in _interfaces(d):
        if not isinstance(info, Array) or p.mode != "m_axi":
            continue
        for acc in rules.port_accesses(d, info.name):
            why = rules.burst_breaker(d, acc)
            if why:
                out.append(Finding("RAMB", acc.line, why))
    return out


def lint(source: str, name: str) -> list[Finding]:
    """Run every rule on a kernel source whose top function is `name`; findings sorted by line."""
    design = build_design(source, name)
    findings = [f for fn in RULES.values() for f in fn(design)]
    return sorted(set(findings), key=lambda f: (f.line, f.bug_type, f.message))


def lint_file(path: Path, top: str | None = None) -> list[Finding]:
    """Lint a file; the top function defaults to the file's parent directory name, else the last function."""
    path = Path(path)
    if not path.is_file():
        raise TricoError(f"{path}: no such file")
    try:
        source = path.read_text()
    except UnicodeDecodeError:
        raise TricoError(f"{path}: not a text file") from None
    return lint(source, top or path.parent.name)
