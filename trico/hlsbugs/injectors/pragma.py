"""Injectors of pragma bugs (invisible to C-simulation): each plants a violation of one pragma rule.

Every site is checked against the rule it breaks (see trico.hlsbugs.rules), so a planted pragma bug
is a bug by construction; the rule sentence is stored as the label's evidence.
"""

from __future__ import annotations

import math

from trico.hlsbugs import rules
from trico.hlsbugs.cparse import Array, Design, Loop, Pragma, text, walk
from trico.hlsbugs.injectors import Edit, Mutation, injector


def _insert_pragma(body, pragma: str) -> Edit:
    """Insert a pragma as the first line of a compound statement."""
    at = body.start_byte + 1
    return Edit(at, at, f"\n#pragma HLS {pragma}")


def _rewrite(p: Pragma, new_arg: str) -> Edit:
    arg = p.node.child_by_field_name("argument")
    return Edit(arg.start_byte, arg.end_byte, f"HLS {new_arg}")


def _delete(p: Pragma) -> Edit:
    return Edit(p.node.start_byte, p.node.end_byte, "")


def _set_opt(p: Pragma, key: str, value: str) -> str:
    """The pragma's argument text with one option set (added when absent)."""
    toks = text(p.node.child_by_field_name("argument")).split()[1:]
    found = False
    for i, tok in enumerate(toks):
        if tok.lower().startswith(key + "="):
            toks[i], found = f"{key}={value}", True
    if not found:
        toks.append(f"{key}={value}")
    return " ".join(toks)


def _loops_with_body(d: Design) -> list[Loop]:
    return [lp for lp in d.loops if lp.body is not None and lp.body.type == "compound_statement"]


@injector("MLP")
def mlp(d: Design) -> list[Mutation]:
    """Pipeline a loop that encloses, or sits inside, an already pipelined loop."""
    out = []
    for lp in _loops_with_body(d):
        if rules.is_pipelined(lp):
            continue
        inner = [c for c in _loops_with_body(d) if lp in c.ancestors() and rules.is_pipelined(c)]
        outer = rules.pipelined_ancestor(lp)
        other = inner[0] if inner else outer
        if other is not None:
            rule = f"loop at line {lp.line} pipelined while loop at line {other.line} is pipelined too"
            out.append(Mutation("MLP", (_insert_pragma(lp.body, "PIPELINE II=1"),), rule))
    return out


def _partial(trip: int) -> str:
    return "UNROLL factor=2" if trip > 2 else "UNROLL off=true"


@injector("ILNU")
def ilnu(d: Design) -> list[Mutation]:
    """Leave a loop under a pipelined loop partly rolled (or roll it entirely)."""
    out = []
    for lp in _loops_with_body(d):
        outer = rules.pipelined_ancestor(lp)
        if lp.trip is None or lp.trip < 2:
            continue
        if outer is not None:
            unroll = lp.pragma("UNROLL")
            edit = (
                _rewrite(unroll, _partial(lp.trip)) if unroll else _insert_pragma(lp.body, _partial(lp.trip))
            )
            rule = f"loop at line {lp.line} under the pipeline at line {outer.line} not fully unrolled"
            out.append(Mutation("ILNU", (edit,), rule))
        elif rules.is_pipelined(lp) and lp.parent is not None and not rules.is_pipelined(lp.parent):
            # No loop nest under a pipeline yet: hoist the pipeline one level and keep the old loop rolled.
            siblings = [c for c in d.loops if lp.parent in c.ancestors() and c is not lp]
            if any(lp in c.ancestors() for c in d.loops) or any(rules.is_pipelined(c) for c in siblings):
                continue  # hoisting would also pipeline a sibling nest (an MLP bug, not ILNU)
            edits = (
                _rewrite(lp.pragma("PIPELINE"), _partial(lp.trip)),
                _insert_pragma(lp.parent.body, "PIPELINE II=1"),
            )
            rule = f"pipeline moved to line {lp.parent.line}; inner loop at line {lp.line} left rolled"
            out.append(Mutation("ILNU", edits, rule))
    return out


@injector("DFP")
def dfp(d: Design) -> list[Mutation]:
    """Move (or put) DATAFLOW into an innermost loop body, where there are no tasks to overlap."""
    existing = [p for p in d.pragmas if p.directive == "DATAFLOW"]
    out = []
    for lp in _loops_with_body(d):
        if (
            any(lp in c.ancestors() for c in d.loops)
            or rules.scope_tasks(lp.body) >= 2
            or not d.in_top(lp.node)
        ):
            continue
        edits = (*(_delete(p) for p in existing), _insert_pragma(lp.body, "DATAFLOW"))
        out.append(
            Mutation("DFP", edits, f"DATAFLOW placed in the body of the innermost loop at line {lp.line}")
        )
    return out


def _partitions(d: Design) -> list[tuple[Pragma, Array]]:
    return [
        (p, d.arrays[p.get("variable")])
        for p in d.pragmas
        if p.directive == "ARRAY_PARTITION" and p.get("variable") in d.arrays
    ]


def _non_divisor(size: int, avoid: int | None = None) -> int | None:
    return next((k for k in range(2, size) if size % k and k != avoid), None)


@injector("FND")
def fnd(d: Design) -> list[Mutation]:
    """Give a cyclic/block partition a factor that does not divide its dimension (or add such a pragma)."""
    out = []
    partitioned = set()
    for p, arr in _partitions(d):
        partitioned.add(arr.name)
        dim = rules.partition_dim(p)
        if rules.partition_type(p) == "complete" or not 0 < dim <= len(arr.dims) or not arr.dims[dim - 1]:
            continue
        bad = _non_divisor(arr.dims[dim - 1], rules.partition_factor(p))
        if bad:
            rule = f"factor {bad} does not divide dim {dim} of {arr.name} (size {arr.dims[dim - 1]})"
            out.append(Mutation("FND", (_rewrite(p, _set_opt(p, "factor", str(bad))),), rule))
    for arr in d.arrays.values():
        if arr.is_port or arr.name in partitioned or not arr.dims[0]:
            continue
        bad = _non_divisor(arr.dims[0])
        decl = next(
            (n for n in walk(d.top) if n.type == "declaration" and arr.name in text(n).split("[")[0].split()),
            None,
        )
        if bad and decl is not None:
            new = f"\n#pragma HLS ARRAY_PARTITION variable={arr.name} type=cyclic factor={bad} dim=1"
            rule = f"factor {bad} does not divide dim 1 of {arr.name} (size {arr.dims[0]})"
            out.append(Mutation("FND", (Edit(decl.end_byte, decl.end_byte, new),), rule))
    return out


@injector("DID")
def did(d: Design) -> list[Mutation]:
    """Point an array_partition at a dimension the array does not have."""
    out = []
    for p, arr in _partitions(d):
        bad = len(arr.dims) + 1
        rule = f"{arr.name} has {len(arr.dims)} dimension(s); partition names dim={bad}"
        out.append(Mutation("DID", (_rewrite(p, _set_opt(p, "dim", str(bad))),), rule))
    return out


@injector("APT")
def apt(d: Design) -> list[Mutation]:
    """Swap cyclic and block on a partition whose parallel accesses call for the original type."""
    out = []
    for p, arr in _partitions(d):
        kind, dim = rules.partition_type(p), rules.partition_dim(p)
        if kind == "complete" or not 0 < dim <= len(arr.dims):
            continue
        need = rules.required_partition_types(d, arr, dim, rules.partition_factor(p) or 0)
        if need != {kind}:
            continue
        other = "block" if kind == "cyclic" else "cyclic"
        rule = f"parallel accesses of {arr.name} on dim {dim} need a {kind} partition; made {other}"
        out.append(Mutation("APT", (_rewrite(p, _set_opt(p, "type", other)),), rule))
    return out


def _interfaces(d: Design) -> list[tuple[Pragma, Array | str]]:
    return [
        (p, d.ports[p.get("port")])
        for p in d.pragmas
        if p.directive == "INTERFACE" and p.get("port") in d.ports
    ]


@injector("SMA")
def sma(d: Design) -> list[Mutation]:
    """Map a scalar port to an m_axi memory interface."""
    out = []
    for p, info in _interfaces(d):
        if not isinstance(info, Array):
            new = f"INTERFACE mode=m_axi port={p.get('port')} offset=slave bundle=gmem0"
            out.append(Mutation("SMA", (_rewrite(p, new),), f"scalar port {p.get('port')} mapped to m_axi"))
    return out


_SCALAR_MODES = ("ap_none", "ap_vld", "ap_stable")


@injector("AMS")
def ams(d: Design) -> list[Mutation]:
    """Map an array port to a scalar (wire or handshake) interface."""
    out = []
    for i, (p, info) in enumerate(_interfaces(d)):
        if isinstance(info, Array):
            mode = _SCALAR_MODES[i % len(_SCALAR_MODES)]
            new = f"INTERFACE mode={mode} port={p.get('port')}"
            out.append(Mutation("AMS", (_rewrite(p, new),), f"array port {p.get('port')} mapped to {mode}"))
    return out


@injector("IDAP")
def idap(d: Design) -> list[Mutation]:
    """Declare a streaming (FIFO) interface on a port that is not accessed once, in order."""
    out = []
    for i, (p, info) in enumerate(_interfaces(d)):
        if isinstance(info, Array) and not rules.is_sequential_once(d, info.name):
            mode = ("ap_fifo", "axis")[i % 2]
            new = f"INTERFACE mode={mode} port={info.name}"
            out.append(
                Mutation(
                    "IDAP",
                    (_rewrite(p, new),),
                    f"port {info.name} declared {mode} but accessed out of order or more than once",
                )
            )
    return out


@injector("RAMB")
def ramb(d: Design) -> list[Mutation]:
    """Walk a burst copy loop over an m_axi port in a scrambled order (same result, no bursts)."""
    out = []
    maxi = {p.get("port") for p, info in _interfaces(d) if isinstance(info, Array) and p.mode == "m_axi"}
    for lp in _loops_with_body(d):
        stmts = [c for c in lp.body.named_children if c.type != "preproc_call"]
        if not lp.var or not lp.trip or lp.trip < 3 or lp.trip != lp.bound or not stmts:
            continue
        copies = all(
            s.type == "expression_statement"
            and s.named_children[0].type == "assignment_expression"
            and text(s.named_children[0].child_by_field_name("operator")) == "="
            and s.named_children[0].child_by_field_name("left").type == "subscript_expression"
            and s.named_children[0].child_by_field_name("right").type == "subscript_expression"
            for s in stmts
        )
        touched = {a.array for a in d.accesses if a.loops and a.loops[-1] is lp and a.array in maxi}
        if not copies or not touched:
            continue
        stride = next(k for k in (3, 5, 7, 11, 13, 17) if math.gcd(k, lp.trip) == 1)
        ids = [n for s in stmts for n in walk(s) if n.type == "identifier" and text(n) == lp.var]
        edits = tuple(Edit(n.start_byte, n.end_byte, f"(({lp.var} * {stride}) % {lp.trip})") for n in ids)
        rule = f"copy loop at line {lp.line} over m_axi port(s) {', '.join(sorted(touched))} walks addresses with stride {stride} mod {lp.trip}"
        out.append(Mutation("RAMB", edits, rule))
    return out
