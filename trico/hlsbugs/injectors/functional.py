"""Injectors of functional bugs (visible to C-simulation): OOB, USE, ZERO, MLU, INIT, INF, BUF, SHFT."""

from __future__ import annotations

from trico.hlsbugs.cparse import Design, Loop, const_value, int_literal, line_of, text, walk
from trico.hlsbugs.injectors import Edit, Mutation, injector
from trico.hlsbugs.rules import has_control_exit, identifiers

_SIGNED = {
    "uint8_t": "int8_t",
    "uint16_t": "int16_t",
    "uint32_t": "int32_t",
    "uint64_t": "int64_t",
    "unsigned char": "signed char",
    "unsigned short": "short",
    "unsigned int": "int",
    "unsigned": "int",
}


def _bodies(d: Design):
    """Function bodies of the kernel file (top and helpers)."""
    return [n.child_by_field_name("body") for n in d.root.children if n.type == "function_definition"]


def _nodes(d: Design, *types: str):
    for body in _bodies(d):
        yield from (n for n in walk(body) if n.type in types)


def _in_for_header(node) -> bool:
    p = node.parent
    return p is not None and p.type == "for_statement" and p.child_by_field_name("body") != node


def _replace(node, new: str) -> Edit:
    return Edit(node.start_byte, node.end_byte, new)


def _for_loops(d: Design) -> list[Loop]:
    return [lp for lp in d.loops if lp.node.type == "for_statement" and lp.var]


@injector("OOB")
def oob(d: Design) -> list[Mutation]:
    """Widen a strict loop bound (`<` -> `<=`, `>` -> `>=`) of a loop that indexes arrays with its variable."""
    out = []
    indexed = {
        lp.node.id
        for acc in d.accesses
        for lp in acc.loops
        if any(identifiers(i, lp.var or "") for i in acc.indices if i is not None)
    }
    for lp in _for_loops(d):
        cond = lp.node.child_by_field_name("condition")
        if lp.node.id not in indexed or cond is None or cond.type != "binary_expression":
            continue
        op = cond.child_by_field_name("operator")
        if text(op) in ("<", ">") and text(cond.child_by_field_name("left")) == lp.var:
            wide = text(op) + "="
            out.append(
                Mutation(
                    "OOB",
                    (_replace(op, wide),),
                    f"loop bound `{text(cond)}` widened to `{text(op)}=` at line {lp.line}",
                )
            )
    return out


@injector("USE")
def use(d: Design) -> list[Mutation]:
    """Turn an unsigned local, cast or helper parameter type into its signed twin (values get sign-extended)."""
    out = []
    top_params = d.top.child_by_field_name("declarator").child_by_field_name("parameters")
    for node in walk(d.root):
        if node.type not in ("primitive_type", "sized_type_specifier") or text(node) not in _SIGNED:
            continue
        holder = node.parent
        if holder.type == "declaration":
            # File-scope tables and loop counters are not data paths.
            if holder.parent.type == "translation_unit" or _in_for_header(holder):
                continue
        elif holder.type == "parameter_declaration":
            if holder.parent == top_params:
                continue  # the test bench's call must still compile
        elif holder.type != "type_descriptor":
            continue
        if not _sign_matters(holder, _type_width(text(node))):
            continue
        signed = _SIGNED[text(node)]
        out.append(
            Mutation(
                "USE", (_replace(node, signed),), f"`{text(node)}` at line {line_of(node)} became `{signed}`"
            )
        )
    return out


_WIDTH = {
    "char": 8, "signed char": 8, "unsigned char": 8, "int8_t": 8, "uint8_t": 8,
    "short": 16, "unsigned short": 16, "int16_t": 16, "uint16_t": 16,
    "int": 32, "unsigned": 32, "unsigned int": 32, "int32_t": 32, "uint32_t": 32,
    "long": 64, "long long": 64, "int64_t": 64, "uint64_t": 64,
    "float": 99, "double": 99,
}  # fmt: skip


def _type_width(type_text: str) -> int:
    return _WIDTH.get(" ".join(w for w in type_text.split() if w not in ("const", "volatile")), 0)


def _sign_matters(holder, width: int) -> bool:
    """Whether a value of this type reaches an operation whose result depends on its sign bit.

    Right shifts, comparisons, division and remainder, array indexing and widening conversions see
    the sign, and so does integer promotion in arithmetic when the type is narrower than int; bitwise
    logic and same-width stores do not, so those sites would only yield equivalent mutants.
    """
    if holder.type == "type_descriptor":
        uses = [holder.parent]
    else:
        names = [_declared_name(d) for d in holder.children_by_field_name("declarator")]
        scope = holder.parent if holder.type == "declaration" else holder.parent.parent.parent
        uses = [n for name in names if name for n in identifiers(scope, name)]
    for use in uses:
        parent = use.parent
        while parent is not None and parent.type == "parenthesized_expression":
            use, parent = parent, parent.parent
        if parent is None:
            continue
        if parent.type == "binary_expression":
            op = text(parent.child_by_field_name("operator"))
            if op in ("<", ">", "<=", ">=", "/", "%") or (
                op == ">>" and parent.child_by_field_name("left") == use
            ):
                return True
            if op in ("+", "-", "*") and width < 32:
                return True
        if parent.type == "assignment_expression" and text(parent.child_by_field_name("operator")) == ">>=":
            return True
        if parent.type == "subscript_argument_list":
            return True
        if parent.type == "cast_expression" and _type_width(text(parent.child_by_field_name("type"))) > width:
            return True
    return False


def _declared_name(decl) -> str | None:
    while decl is not None and decl.type != "identifier":
        decl = decl.child_by_field_name("declarator")
    return text(decl) if decl is not None else None


def _is_zero(value) -> bool:
    t = text(value).strip().rstrip("fFuUlL")
    try:
        return float(t) == 0.0
    except ValueError:
        return t in ("{0}", "{}", "{ 0 }")


@injector("ZERO")
def zero(d: Design) -> list[Mutation]:
    """Replace a non-zero initializer by zero (tables included)."""
    out = []
    for node in walk(d.root):
        if node.type != "init_declarator" or node.parent.type != "declaration":
            continue
        decl, value = node.parent, node.child_by_field_name("value")
        if value is None or _is_zero(value) or _in_for_header(decl):
            continue
        at_file_scope = decl.parent.type == "translation_unit"
        if at_file_scope and value.type != "initializer_list":
            continue  # compile-time sizes and flags, not data
        new = "{0}" if value.type == "initializer_list" else "0"
        out.append(
            Mutation(
                "ZERO",
                (_replace(value, new),),
                f"initializer of `{text(node.child_by_field_name('declarator'))}` at line {line_of(node)} zeroed",
            )
        )
    return out


@injector("INIT")
def init(d: Design) -> list[Mutation]:
    """Drop the initializer of a local variable so its first read sees garbage."""
    out = []
    for node in _nodes(d, "init_declarator"):
        decl = node.parent
        if decl.type != "declaration" or _in_for_header(decl) or "static" in text(decl).split("=")[0].split():
            continue
        name = node.child_by_field_name("declarator")
        value = node.child_by_field_name("value")
        out.append(
            Mutation(
                "INIT",
                (Edit(name.end_byte, value.end_byte, ""),),
                f"`{text(name)}` at line {line_of(node)} left uninitialized",
            )
        )
    return out


@injector("INF")
def inf(d: Design) -> list[Mutation]:
    """Drop a for loop's update so its variable never reaches the bound."""
    out = []
    for lp in _for_loops(d):
        upd = lp.node.child_by_field_name("update")
        if upd is None or has_control_exit(lp.body) or lp.trip is None:
            continue
        out.append(
            Mutation(
                "INF", (_replace(upd, ""),), f"update `{text(upd)}` of the loop at line {lp.line} removed"
            )
        )
    return out


@injector("MLU")
def mlu(d: Design) -> list[Mutation]:
    """Manual unroll by two that forgets the index offset, or an unrolled copy that lost its `+ k`."""
    out = []
    for lp in _for_loops(d):
        upd = lp.node.child_by_field_name("update")
        body = lp.body
        if upd is None or body is None or body.type != "compound_statement" or has_control_exit(body):
            continue
        step = None
        if upd.type == "update_expression" and "++" in text(upd) and lp.trip and lp.trip % 2 == 0:
            stmts = [
                c for c in body.named_children if not (c.type == "preproc_call" and "#pragma" in text(c))
            ]
            if any(identifiers(c, lp.var) and _assigns(c, lp.var) for c in stmts) or not stmts:
                continue
            copy = "\n".join(text(c) for c in stmts)
            close = body.end_byte - 1
            edits = (_replace(upd, f"{lp.var} += 2"), Edit(close, close, "{\n" + copy + "\n}\n"))
            out.append(
                Mutation(
                    "MLU", edits, f"loop at line {lp.line} unrolled by 2 without offsetting the second copy"
                )
            )
            continue
        if upd.type == "assignment_expression" and text(upd.child_by_field_name("operator")) == "+=":
            step = const_value(upd.child_by_field_name("right"), d.consts)
        if not step or step < 2:
            continue
        for n in walk(body):
            if n.type == "binary_expression" and text(n.child_by_field_name("operator")) == "+":
                left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
                k = int_literal(text(right)) if right.type == "number_literal" else None
                if text(left) == lp.var and k is not None and 0 < k < step:
                    out.append(
                        Mutation(
                            "MLU",
                            (_replace(n, lp.var),),
                            f"unrolled copy `{text(n)}` at line {line_of(n)} lost its offset",
                        )
                    )
    return out


def _assigns(node, var: str) -> bool:
    for n in walk(node):
        target = None
        if n.type == "assignment_expression":
            target = n.child_by_field_name("left")
        elif n.type == "update_expression":
            target = n.child_by_field_name("argument")
        if target is not None and text(target) == var:
            return True
    return False


@injector("BUF")
def buf(d: Design) -> list[Mutation]:
    """In a buffer copy `dst[..v..] = src[..v..]`, read the other half of `src` along v."""
    out = []
    for lp in _for_loops(d):
        upd = lp.node.child_by_field_name("update")
        # trip == bound with a `++` update means the loop counts 0..N-1, so the half swap stays in range.
        if (
            not lp.trip
            or lp.trip % 2
            or lp.trip != lp.bound
            or upd is None
            or text(upd).replace(" ", "") not in (f"{lp.var}++", f"++{lp.var}")
        ):
            continue
        for n in walk(lp.body):
            if n.type != "assignment_expression" or text(n.child_by_field_name("operator")) != "=":
                continue
            src = n.child_by_field_name("right")
            if (
                src.type != "subscript_expression"
                or n.child_by_field_name("left").type != "subscript_expression"
            ):
                continue
            ids = identifiers(src, lp.var)
            if not ids or d.loop_of(n) is not lp:
                continue
            half, full = lp.trip // 2, lp.trip
            edits = tuple(_replace(i, f"(({lp.var} + {half}) % {full})") for i in ids)
            out.append(
                Mutation(
                    "BUF",
                    edits,
                    f"copy at line {line_of(n)} reads the other half of `{text(src).split('[')[0]}`",
                )
            )
    return out


@injector("SHFT")
def shft(d: Design) -> list[Mutation]:
    """Push a shift amount past the operand width."""
    out = []
    for n in _nodes(d, "binary_expression", "assignment_expression"):
        op = text(n.child_by_field_name("operator"))
        if op not in ("<<", ">>", "<<=", ">>="):
            continue
        amount = n.child_by_field_name("right")
        k = int_literal(text(amount)) if amount.type == "number_literal" else None
        new = str(k + 32) if k is not None else f"({text(amount)} + 32)"
        out.append(
            Mutation(
                "SHFT",
                (_replace(amount, new),),
                f"shift `{text(n)}` at line {line_of(n)} now shifts by {new}",
            )
        )
    return out
