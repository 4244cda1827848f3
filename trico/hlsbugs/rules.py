"""HLS pragma semantics over the design model: what is pipelined, unrolled, partitioned, bursted.

These facts are the rules of each pragma type; the lint checks them on whole files and the pragma
injectors use them as preconditions, so a pragma variant is a bug by construction.
"""

from __future__ import annotations

from trico.hlsbugs.cparse import Access, Array, Design, Loop, Pragma, affine, text, walk

MEMORY_MODES = {"m_axi", "ap_memory", "bram", "ap_fifo", "axis"}
SCALAR_MODES = {"ap_none", "ap_vld", "ap_ack", "ap_ovld", "ap_hs", "ap_stable"}
STREAM_MODES = {"ap_fifo", "axis"}


def is_pipelined(loop: Loop) -> bool:
    """The loop carries a PIPELINE pragma that is not switched off."""
    p = loop.pragma("PIPELINE")
    return p is not None and (p.get("off") or "false").lower() != "true"


def pipelined_ancestor(loop: Loop) -> Loop | None:
    """The nearest enclosing pipelined loop."""
    return next((a for a in loop.ancestors() if is_pipelined(a)), None)


def unroll_factor(loop: Loop) -> int | None:
    """Copies an UNROLL pragma makes (trip count when full), 1 when off, None without the pragma."""
    p = loop.pragma("UNROLL")
    if p is None:
        return None
    if (p.get("off") or "false").lower() == "true":
        return 1
    if p.get("factor"):
        try:
            return int(p.get("factor"))
        except ValueError:
            return None
    return loop.trip


def parallel_vars(access: Access) -> set[str]:
    """Loop variables whose iterations run side by side at this access (unrolled or under a pipeline)."""
    out = set()
    for i, lp in enumerate(access.loops):
        under_pipeline = any(is_pipelined(a) for a in access.loops[:i])
        factor = unroll_factor(lp)
        if lp.var and ((factor is not None and factor > 1) or (under_pipeline and factor is None)):
            out.add(lp.var)
    return out


def partition_target(design: Design, p: Pragma) -> Array | None:
    """The array an ARRAY_PARTITION pragma names."""
    return design.arrays.get(p.get("variable") or "")


def partition_type(p: Pragma) -> str:
    """cyclic, block or complete (Vitis' default)."""
    if p.get("type"):
        return p.get("type").lower()
    words = [w.lower() for w in p.words]
    return next((w for w in words if w in ("cyclic", "block", "complete")), "complete")


def partition_dim(p: Pragma) -> int:
    """The partitioned dimension (1-based; 0 means all)."""
    try:
        return int(p.get("dim") or "1")
    except ValueError:
        return -1


def partition_factor(p: Pragma) -> int | None:
    """The partition factor, None for complete partitions."""
    try:
        return int(p.get("factor")) if p.get("factor") else None
    except ValueError:
        return None


def required_partition_types(design: Design, array: Array, dim: int, factor: int) -> set[str]:
    """Partition types the parallel accesses of `array` on `dim` call for (consecutive -> cyclic)."""
    size = array.dims[dim - 1] if 0 < dim <= len(array.dims) else None
    out = set()
    for acc in design.accesses:
        if acc.array != array.name or len(acc.indices) < dim or acc.indices[dim - 1] is None:
            continue
        lin = affine(acc.indices[dim - 1], design.consts)
        if lin is None:
            continue
        for var in parallel_vars(acc):
            c = abs(lin.get(var, 0))
            if c == 1:
                out.add("cyclic")
            elif c > 1 and size and factor and c * factor == size:
                out.add("block")
    return out


def port_accesses(design: Design, port: str) -> list[Access]:
    """Accesses of a port inside the top function."""
    return [a for a in design.accesses if a.array == port and design.in_top(a.node)]


def flat_index(design: Design, acc: Access) -> dict[str, int] | None:
    """Affine form of the row-major flattened index of an access, None if not affine."""
    arr = design.arrays.get(acc.array)
    if arr is None or any(i is None for i in acc.indices):
        return None
    total: dict[str, int] = {"": 0}
    stride = 1
    for pos in range(len(acc.indices) - 1, -1, -1):
        lin = affine(acc.indices[pos], design.consts)
        if lin is None:
            return None
        for k, v in lin.items():
            total[k] = total.get(k, 0) + v * stride
        if pos < len(arr.dims):
            stride *= arr.dims[pos] or 0
    return total


def is_sequential_once(design: Design, port: str) -> bool:
    """The port is read or written (not both) at one site, in one pass over consecutive addresses."""
    accs = port_accesses(design, port)
    if len(accs) != 1 or (accs[0].read and accs[0].write):
        return False
    acc = accs[0]
    lin = flat_index(design, acc)
    if lin is None or lin.get("", 0) != 0:
        return False
    expected = 1
    for lp in reversed(acc.loops):
        if lp.var is None or lp.trip is None or lin.get(lp.var, 0) != expected:
            return False
        expected *= lp.trip
    return set(lin) <= {""} | {lp.var for lp in acc.loops}


def burst_breaker(design: Design, acc: Access) -> str | None:
    """Why an m_axi access cannot be bursted (non-affine or strided in its innermost loop), else None."""
    lin = flat_index(design, acc)
    if lin is None:
        return f"index of {acc.array} is not an affine function of the loop variables"
    if acc.loops and acc.loops[-1].var:
        var = acc.loops[-1].var
        c = lin.get(var, 0)
        if abs(c) > 1 and not _covers_stride(design, acc, lin, var, abs(c)):
            return f"{acc.array} is accessed with stride {c} in the loop over {var}"
    return None


def _covers_stride(design: Design, acc: Access, lin: dict[str, int], var: str, stride: int) -> bool:
    """Accesses in the same loop that fill every offset of the stride form one contiguous stream."""
    base = {k: v for k, v in lin.items() if k != ""}
    offsets = set()
    for other in port_accesses(design, acc.array):
        if other.loops and other.loops[-1] is acc.loops[-1]:
            o = flat_index(design, other)
            if o is not None and {k: v for k, v in o.items() if k != ""} == base:
                offsets.add(o.get("", 0) - lin.get("", 0))
    return any(all(s + k in offsets for k in range(stride)) for s in offsets)


def scope_tasks(scope) -> int:
    """Loops and call statements directly in a compound statement: the tasks a DATAFLOW region would see."""
    n = 0
    for child in scope.named_children:
        node = child
        while node.type == "labeled_statement":
            node = node.named_children[-1]
        is_loop = node.type in ("for_statement", "while_statement", "do_statement")
        is_call = node.type == "expression_statement" and any(
            c.type == "call_expression" for c in node.named_children
        )
        n += is_loop or is_call
    return n


def has_control_exit(body) -> bool:
    """A loop body that leaves early (break / continue / return / goto)."""
    return any(
        n.type in ("break_statement", "continue_statement", "return_statement", "goto_statement")
        for n in walk(body)
    )


def identifiers(node, name: str) -> list:
    """Identifier nodes spelling `name` under `node`."""
    return [n for n in walk(node) if n.type == "identifier" and text(n) == name]
